"""Tables shaped like the template's records and ledger tables, for the emulator's own tables
(the local Transfer API's results) and for tests and benchmarks on moto."""

from __future__ import annotations

from typing import Any


def create_pk_sk_table(ddb: Any, name: str) -> None:
    """An on-demand table keyed like the template's: ``pk`` (hash) and ``sk`` (range) strings."""
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
