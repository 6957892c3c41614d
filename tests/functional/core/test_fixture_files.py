"""The sample partner files in fixtures/ go through the pipeline with the demo feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FILES = ROOT / "fixtures" / "files"

EXPECTED = {
    # key under inbound/demo/ → (status, rows_ok, rows_rejected)
    "orders/orders-2026-11-01.csv": ("PROCESSED", 4, 0),
    "orders/orders-2026-11-02-with-rejects.csv": ("PROCESSED_WITH_REJECTS", 2, 5),
    "orders/orders-2026-11-03.csv.gz": ("PROCESSED", 200, 0),
    "orders/orders-2026-11-04-truncated.csv.gz": ("FAILED", 0, 0),
    "events/events-2026-11-01.jsonl": ("PROCESSED_WITH_REJECTS", 3, 2),
    "customers/customers-latin1.csv": ("PROCESSED", 3, 0),
    "README-partner.txt": ("UNMATCHED", 0, 0),
}


@pytest.fixture
def feeds_yaml() -> str:
    return (ROOT / "fixtures" / "feeds.yaml").read_text()


def test_every_sample_file_ends_as_documented(pipeline):
    for name in EXPECTED:
        pipeline.land(f"inbound/demo/{name}", (FILES / name).read_bytes())
    pipeline.drain(timeout=60)
    outcomes = {
        name: (e.status, e.rows_ok, e.rows_rejected)
        for name in EXPECTED
        for e in [pipeline.file(f"inbound/demo/{name}")]
    }
    assert outcomes == EXPECTED
    failed = pipeline.file("inbound/demo/orders/orders-2026-11-04-truncated.csv.gz")
    assert failed.reason and "gzip" in failed.reason
    assert len(pipeline.dlq_messages()) == 1

    items = {i["pk"]: i for i in pipeline.items()}
    assert items["CUSTOMER#C1"]["name"] == "Zoë Müller"
    assert items["CUSTOMER#C1"]["address"] == "Hauptstraße 1\r\n10115 Berlin"
    assert items["CUSTOMER#C1"]["since"] == "2020-02-01"
    assert items["CUSTOMER#C2"]["_line"] == 4
    assert items["ORDER#1002"]["placed_at"] == "2026-11-01T09:20:00+01:00"
    assert items["ORDER#1002"]["gift"] is True

    reasons = [
        r["reason"]
        for r in pipeline.rejects("inbound/demo/orders/orders-2026-11-02-with-rejects.csv")
    ]
    assert reasons == [
        "field 'amount': not a decimal: 'not-a-number'",
        "field 'quantity': not an integer: 'two'",
        "field 'order_id': required but empty",
        "field 'placed_at': not a timestamp (ISO 8601): 'yesterday'",
        "field 'gift': not a boolean: 'maybe'",
    ]
