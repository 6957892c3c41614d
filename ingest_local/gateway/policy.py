"""What a Transfer user's session policy allows on the objects of one mapping.

Transfer Family evaluates the user's ``Policy`` (a session policy) together with its role on
every S3 call; the gateway has no IAM, so it reads the same document and answers, for each
``HomeDirectoryMappings`` target, which of the object actions it serves (get, put, delete)
the policy allows there. The subset of IAM it needs, evaluated conservatively:

* ``Effect`` Allow / Deny, an explicit Deny wins, nothing allowed is denied;
* ``Action`` and ``Resource`` (string or list) with IAM's ``*`` and ``?`` wildcards, and the
  ``${transfer:UserName}`` / ``${transfer:HomeBucket}`` policy variables;
* a statement with a ``Condition`` never allows (the gateway cannot evaluate it) and always
  denies; ``NotAction`` / ``NotResource`` statements likewise.

No policy at all means the role alone decides, which the gateway cannot see: every action is
allowed, as before session policies were read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from ingest_local.gateway.paths import ALL_ACTIONS, LogicalRoot


def object_actions(
    policy: str | None, root: LogicalRoot, *, username: str, home_bucket: str
) -> frozenset[str]:
    """The object actions of :data:`ALL_ACTIONS` that ``policy`` allows on every key under
    ``root`` (probed with one key below its prefix). Raises ValueError if it is not JSON."""
    if not policy:
        return ALL_ACTIONS
    try:
        document = json.loads(policy)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the session policy is not JSON: {exc}") from exc
    variables = {"${transfer:UserName}": username, "${transfer:HomeBucket}": home_bucket}
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    probe = f"arn:aws:s3:::{root.bucket}/{root.prefix}/x"
    return frozenset(
        action
        for action in ALL_ACTIONS
        if _allows(statements, action, probe, variables)
        and not _denies(statements, action, probe, variables)
    )


def _allows(
    statements: list[dict[str, Any]], action: str, arn: str, variables: dict[str, str]
) -> bool:
    return any(
        s.get("Effect") == "Allow"
        and "Condition" not in s
        and _matches(s.get("Action"), action, variables)
        and _matches(s.get("Resource"), arn, variables)
        for s in statements
    )


def _denies(
    statements: list[dict[str, Any]], action: str, arn: str, variables: dict[str, str]
) -> bool:
    for s in statements:
        if s.get("Effect") != "Deny":
            continue
        if "Condition" in s or "NotAction" in s or "NotResource" in s:
            return True  # cannot tell: refuse rather than allow
        if _matches(s.get("Action"), action, variables) and _matches(
            s.get("Resource"), arn, variables
        ):
            return True
    return False


def _matches(patterns: str | Iterable[str] | None, value: str, variables: dict[str, str]) -> bool:
    if patterns is None:
        return False
    if isinstance(patterns, str):
        patterns = [patterns]
    for pattern in patterns:
        text = pattern
        for name, replacement in variables.items():
            text = text.replace(name, replacement)
        if _wildcard(text).fullmatch(value):
            return True
    return False


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one; action names ignore case."""
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.IGNORECASE if pattern.lower().startswith("s3:") else 0)
