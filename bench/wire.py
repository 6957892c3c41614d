"""Benchmark of ``ingest.adapters.wire`` against the boto3 / botocore code it stands in for.

Two pairs, each on the benchmark's own orders rows (``processor_data.orders_csv``), typed and
built by the core exactly as the processor builds them, in one run, interleaved round by
round so that a drift in the machine's load hits both sides alike:

1. values to DynamoDB's wire format: ``TypeSerializer().serialize`` on every attribute (what
   boto3's resource layer and the reference loop do) against ``wire.serialize_item``;
2. the JSON body of a 25-item ``BatchWriteItem``: botocore's JSON serializer for the
   operation (with and without its parameter validation) against ``wire.batch_write_body``.

Both sides' outputs are compared before timing (tests/unit/core/test_core_wire.py holds them
equal byte for byte on generated values). Figures are CPU microseconds per row, the best of
``--rounds`` rounds; a ratio below 1 means ours costs less.

    .venv/bin/python bench/wire.py [--rows 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.serialize import create_serializer
from processor_data import FEEDS_YAML, orders_csv

from ingest.adapters.wire import batch_write_body, serialize_item
from ingest.domain.feeds import load_feeds
from ingest.domain.formats import parse_records
from ingest.domain.lines import iter_lines
from ingest.domain.records import build_item

KEY = "inbound/acme/orders/wire.csv"
TABLE = "records"
BATCH = 25


def built_items(rows: int) -> list[dict[str, Any]]:
    """The processor's items for ``rows`` rows of the benchmark's orders file."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        feeds = data / "feeds.yaml"
        feeds.write_text(FEEDS_YAML, encoding="utf-8")
        match = load_feeds(feeds).resolve(KEY)
        assert match is not None
        path = orders_csv(data, rows)
        with path.open("rb") as stream:
            lines = iter_lines(stream, start=0, end=None, first_line=1)
            return [
                build_item(
                    match.feed,
                    record.values,
                    captures=match.captures,
                    source_uri=f"s3://bench/{KEY}",
                    line=record.line,
                )
                for record in parse_records(match.feed, lines, owns_file_start=True)
                if record.values is not None
            ]


def _batches(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    requests = [{"PutRequest": {"Item": item}} for item in items]
    return [requests[i : i + BATCH] for i in range(0, len(requests), BATCH)]


def _cpu_us_per_row(run: Callable[[], object], rows: int) -> float:
    start = time.process_time()
    run()
    return (time.process_time() - start) / rows * 1e6


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)

    items = built_items(args.rows)
    rows = len(items)
    serializer = TypeSerializer()

    def library_items() -> list[dict[str, Any]]:
        return [{k: serializer.serialize(v) for k, v in item.items()} for item in items]

    def our_items() -> list[dict[str, Any]]:
        return [serialize_item(item) for item in items]

    wire_batches = _batches(our_items())
    operation = boto3.client("dynamodb", region_name="us-east-1").meta.service_model
    batch_write = operation.operation_model("BatchWriteItem")
    validating = create_serializer("json", include_validation=True)
    plain = create_serializer("json", include_validation=False)

    def botocore_bodies(serial: Any) -> Callable[[], list[bytes]]:
        def run() -> list[bytes]:
            return [
                serial.serialize_to_request({"RequestItems": {TABLE: b}}, batch_write)["body"]
                for b in wire_batches
            ]

        return run

    def our_bodies() -> list[bytes]:
        return [batch_write_body(TABLE, b) for b in wire_batches]

    # the same output, or the comparison means nothing
    assert library_items() == our_items()
    assert botocore_bodies(validating)() == our_bodies() == botocore_bodies(plain)()

    sides: dict[str, Callable[[], object]] = {
        "TypeSerializer().serialize, every attribute": library_items,
        "wire.serialize_item": our_items,
        "botocore JSON serializer, validated body": botocore_bodies(validating),
        "botocore JSON serializer, no validation": botocore_bodies(plain),
        "wire.batch_write_body": our_bodies,
    }
    best = {name: float("inf") for name in sides}
    for _ in range(args.rounds):
        for name, run in sides.items():
            best[name] = min(best[name], _cpu_us_per_row(run, rows))

    print(f"{rows:,} rows of the benchmark's orders file, best of {args.rounds} rounds")
    print("CPU us per row:")
    for name, us in best.items():
        print(f"  {name:<46} {us:7.2f}")
    items_ratio = best["wire.serialize_item"] / best["TypeSerializer().serialize, every attribute"]
    print(f"  serialize_item / TypeSerializer = {items_ratio:.2f} x")
    for library in ("validated body", "no validation"):
        ratio = best["wire.batch_write_body"] / best[f"botocore JSON serializer, {library}"]
        print(f"  batch_write_body / botocore ({library}) = {ratio:.2f} x")


if __name__ == "__main__":
    main()
