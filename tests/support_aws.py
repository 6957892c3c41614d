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
