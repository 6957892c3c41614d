"""Fixed-width files end to end through the real fanout and processor handlers (moto): split
into chunks, with header, trailer and record types; the trailer's count checked once every
chunk is counted, a mismatch failing the file with both numbers."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from support_deliveries import PAYMENTS_FEED, payments_file
from test_operator_cli import ingest  # noqa: F401 (the fixture: `ingest ARGS` on this pipeline)

ROWS = 400
CHUNK = 2048


@pytest.fixture
def feeds_yaml(feeds_yaml: str) -> str:
    # the shared payments feed, split into small chunks
    return feeds_yaml + PAYMENTS_FEED.replace(
        "    format: fixed_width\n", f"    format: fixed_width\n    chunk_size: {CHUNK}\n"
    )


def test_a_chunked_file_lands_every_record_and_passes_its_trailer_check(pipeline):
    key = "inbound/acme/payments/2024-01-31.txt"
    data = payments_file(ROWS, ROWS, bad={3})
    result = pipeline.land(key, data)
    chunks = result["files"][0]["chunks"]
    assert chunks == -(-len(data) // CHUNK) and chunks >= 5
    assert pipeline.drain().failed == 0

    entry = pipeline.file(key)
    skipped = len(range(0, ROWS, 7))
    assert (entry.status, entry.rows_ok, entry.rows_rejected, entry.chunks_done) == (
        "PROCESSED_WITH_REJECTS",
        ROWS - 1,
        1,
        chunks,
    )
    assert (entry.records_skipped, entry.declared_records) == (skipped, ROWS)
    items = {item["payment_id"]: item for item in pipeline.items()}
    assert len(items) == ROWS - 1
    assert items["P00000"]["amount"] == Decimal("0")
    assert items["P00001"]["amount"] == Decimal("1.01")
    assert items["P00005"]["amount"] == Decimal("-5.05")
    assert items["P00005"]["booked_on"] == "2024-01-31"
    # line numbers count the header and the skipped records
    assert items["P00001"]["_line"] == 4
    rejects = pipeline.rejects(key)
    assert [r["line"] for r in rejects] == [6]
    assert "field 'amount'" in rejects[0]["reason"]


def test_a_trailer_count_mismatch_fails_the_file_with_both_numbers(pipeline):
    key = "inbound/acme/payments/short.txt"
    pipeline.land(key, payments_file(ROWS, ROWS + 2))
    pipeline.drain()
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    assert entry.reason == (
        f"the trailer declares {ROWS + 2} records but {ROWS} were read "
        "(a truncated or padded delivery)"
    )
    assert (entry.chunks_done, entry.rows_ok) == (entry.chunks, ROWS)


def test_a_file_without_its_trailer_fails(pipeline):
    key = "inbound/acme/payments/cut.txt"
    data = payments_file(20, 20)
    pipeline.land(key, data[: data.rindex(b"T")])  # the trailer line lost in transit
    pipeline.drain()
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    # the last line left is a detail record, where a trailer's count is expected
    assert "the trailer's record count (columns 2-10) is not a number: 'P00019'" in (
        entry.reason or ""
    )


def test_ingest_status_key_shows_the_skipped_records_and_the_declared_count(
    pipeline,
    ingest,  # noqa: F811
):
    key = "inbound/acme/payments/small.txt"
    pipeline.land(key, payments_file(20, 20))
    pipeline.drain()
    run = ingest("status", key, "--json")
    assert run.code == 0, run.err
    story = json.loads(run.out)
    assert (story["status"], story["rows_ok"]) == ("PROCESSED", 20)
    assert (story["records_skipped"], story["declared_records"]) == (3, 20)
    table = ingest("status", key).out
    assert re.search(r"records_skipped\s+3\b", table), table
    assert re.search(r"declared_records\s+20\b", table), table
