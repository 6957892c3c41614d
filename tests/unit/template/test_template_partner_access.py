"""template.yaml: the SFTP partners' role reads and writes inbound/*, only reads receipts/*,
and reaches nothing else in the landing bucket (least privilege; the session policy of each
user narrows it to its own prefixes and denies writes under receipts/)."""

from __future__ import annotations

import json
from typing import Any

from support_template import _statements

BUCKET_ARN = "arn:${AWS::Partition}:s3:::${AWS::StackName}-landing-${AWS::AccountId}"


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resource(statement: dict[str, Any]) -> str:
    resource = statement["Resource"]
    return str(resource["Fn::Sub"] if isinstance(resource, dict) else resource)


def test_partners_read_receipts_and_write_only_inbound(transformed: dict[str, Any]) -> None:
    statements = [s for owner, s in _statements(transformed) if owner == "TransferUserRole"]
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    by_resource: dict[str, set[str]] = {}
    for statement in s3:
        assert statement["Effect"] == "Allow"
        by_resource.setdefault(_resource(statement), set()).update(_actions(statement))
    assert by_resource == {
        BUCKET_ARN: {"s3:ListBucket"},
        f"{BUCKET_ARN}/inbound/*": {
            "s3:PutObject",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:AbortMultipartUpload",
        },
        f"{BUCKET_ARN}/receipts/*": {"s3:GetObject", "s3:GetObjectVersion"},
    }
    (listing,) = [s for s in s3 if _actions(s) == ["s3:ListBucket"]]
    # IAM evaluates a role's policy without Transfer's ${transfer:UserName} (only the user's
    # session policy has it): the role lists both prefixes, the session policy narrows them
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["inbound/*", "receipts/*"]
    assert "transfer:" not in json.dumps(statements)
    assert "receipts" not in json.dumps(
        [s for s in s3 if set(_actions(s)) & {"s3:PutObject", "s3:DeleteObject"}]
    )
