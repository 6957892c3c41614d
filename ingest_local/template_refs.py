"""Reading references out of a (transformed) template: which resource an expression names."""

from __future__ import annotations

from typing import Any


def function_of(arn_expr: Any) -> str | None:
    """The logical id of the function named by a template expression (GetAtt F.Arn or Ref F)."""
    if isinstance(arn_expr, dict):
        if "Fn::GetAtt" in arn_expr:
            target = arn_expr["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Ref" in arn_expr:
            return str(arn_expr["Ref"])
    return None
