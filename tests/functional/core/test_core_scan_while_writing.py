"""The local stack's DynamoDB holds up while it is written: a Scan of the records table (what
``ingest status`` and a user's own reads do) never meets a 500 from moto while the processor
writes thousands of items. moto iterates a table's items without a lock
(``dictionary changed size during iteration``); the local stack's fidelity layer makes every
DynamoDB request atomic, as DynamoDB's are."""

from __future__ import annotations

import sys
import threading
from typing import Any

import boto3

from ingest_local.moto_fidelity import serialize_dynamodb_requests

ROWS = 1200


def test_scans_beside_a_writing_processor_never_fail(pipeline) -> None:
    serialize_dynamodb_requests()  # as `ingest up` does
    # switch threads far more often than Python's 5 ms, so that a write lands in the middle of
    # a scan's iteration as it does under load (without the fix this fails within seconds)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    rows = "".join(f"{i},{i}.25\n" for i in range(ROWS))
    pipeline.land("inbound/acme/orders/many.csv", ("order_id,amount\n" + rows).encode())
    stop = threading.Event()
    errors: list[BaseException] = []
    scans = [0]

    def scan_loop() -> None:
        ddb: Any = boto3.client("dynamodb", region_name="us-east-1")
        while not stop.is_set():
            try:
                for table in ("records", "ledger"):
                    for _ in ddb.get_paginator("scan").paginate(TableName=table):
                        pass
                    ddb.get_item(TableName=table, Key={"pk": {"S": "none"}, "sk": {"S": "x"}})
                scans[0] += 1
            except BaseException as exc:
                errors.append(exc)
                return

    readers = [threading.Thread(target=scan_loop, daemon=True) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        pipeline.drain(timeout=300)
    finally:
        stop.set()
        for reader in readers:
            reader.join(60)
        sys.setswitchinterval(previous)
    assert errors == []
    assert scans[0] >= 2, "the readers ran beside the writes"
    entry = pipeline.file("inbound/acme/orders/many.csv")
    assert (entry.status, entry.rows_ok) == ("PROCESSED", ROWS)
    assert pipeline.count_items() == ROWS
