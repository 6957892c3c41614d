"""The reference loop of ``bench/processor.py``: the plain, correct way to write a CSV file to
DynamoDB, written here as a user would, to measure the processor's CPU per row against.

* the stdlib ``csv.reader`` over the file;
* typed fields: ``Decimal`` for the amount, ``int`` for the quantity (the rest strings);
* boto3's ``TypeSerializer`` on every value;
* the low-level client's ``batch_write_item``, 25 items a call, ``UnprocessedItems`` sent
  again (after a short backoff) until none are left.

It writes the same items as the processor (the same attributes, ``_feed``, ``_source`` and
``_line`` included) and does none of its checks: no validation beyond what ``Decimal`` and
``int`` refuse, no rejects, no ledger.
"""

from __future__ import annotations

import csv
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeSerializer

BATCH = 25


def write_csv(client: Any, table: str, path: Path, *, source_uri: str, limit: int) -> int:
    """Write the first ``limit`` rows of the orders file at ``path``; returns how many."""
    serializer = TypeSerializer()
    written = 0
    batch: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        column = {name: i for i, name in enumerate(next(reader))}
        order_id, amount, quantity = column["order_id"], column["amount"], column["quantity"]
        placed_at, customer, sku, status = (
            column["placed_at"],
            column["customer"],
            column["sku"],
            column["status"],
        )
        for line, row in enumerate(reader, start=2):
            if written + len(batch) >= limit:
                break
            item = {
                "pk": f"ORDER#{row[order_id]}",
                "sk": "PARTNER#acme",
                "order_id": row[order_id],
                "amount": Decimal(row[amount]),
                "quantity": int(row[quantity]),
                "placed_at": row[placed_at],
                "customer": row[customer],
                "sku": row[sku],
                "status": row[status],
                "_feed": "orders",
                "_source": source_uri,
                "_line": line,
            }
            batch.append(
                {"PutRequest": {"Item": {k: serializer.serialize(v) for k, v in item.items()}}}
            )
            if len(batch) == BATCH:
                written += _send(client, table, batch)
                batch = []
    if batch:
        written += _send(client, table, batch)
    return written


def _send(client: Any, table: str, batch: list[dict[str, Any]]) -> int:
    pending: dict[str, Any] = {table: batch}
    attempt = 0
    while pending:
        if attempt:
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        attempt += 1
    return len(batch)
