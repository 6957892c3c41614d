"""Shared test helpers for AWS resources the template would create (moto has them empty)."""

from __future__ import annotations

from typing import Any


def create_pk_sk_table(ddb: Any, name: str) -> None:
    """A table with the records/ledger tables' key schema (``pk``/``sk`` strings)."""
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def fake_aws_env(monkeypatch: Any, region: str = "us-east-1") -> None:
    """Fake credentials, the region and Powertools' settings, and no endpoint override: what
    the handlers need to run against in-process moto."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "POWERTOOLS_METRICS_NAMESPACE": "sftp-ingest-tests",
        "POWERTOOLS_SERVICE_NAME": "tests",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
