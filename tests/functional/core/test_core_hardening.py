"""Defects an adversarial pass found in the core path, each through the real path: an object in
S3, its S3 event to the fanout handler, SQS, and the processor handler.

Rows DynamoDB cannot take are rejects (never a hung invocation); a version sent again is
ingested afresh; a CSV that cannot be split into records says where; JSON Lines that Python
refuses are rejects; huge lines and decompression bombs stay bounded.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc

import pytest

GOOD = [f"inbound/globex/orders/fine-{n}.csv" for n in range(3)]
MORE_FEEDS = """
  - name: notes
    match: "inbound/{partner}/notes/*.csv"
    format: csv
    csv: {quoted_newlines: true}
    key: {pk: "NOTE#{id}", sk: "PARTNER#{partner}"}
    fields:
      id: {type: string, required: true}
      note: {type: string}
  - name: wide
    match: "inbound/{partner}/wide/*.csv"
    format: csv
    max_compression_ratio: 100000
    key: {pk: "WIDE#{order_id}"}
    fields:
      order_id: {type: string, required: true}
      amount: {type: decimal}
  - name: limited
    match: "inbound/{partner}/limited/*.csv"
    format: csv
    max_decompressed_size: 64KiB
    key: {pk: "LIMITED#{order_id}"}
    fields:
      order_id: {type: string, required: true}
      amount: {type: decimal}
"""


@pytest.fixture
def feeds_yaml(feeds_yaml: str) -> str:
    """The default feeds, plus a quoted-newlines feed and two with their own limits."""
    return feeds_yaml.rstrip() + "\n" + MORE_FEEDS


def orders(rows: int, start: int = 0) -> bytes:
    body = "".join(f"{i},{i}.50\n" for i in range(start, start + rows))
    return ("order_id,amount\n" + body).encode()


def land_good_files(pipeline) -> None:
    for n, key in enumerate(GOOD):
        pipeline.land(key, orders(20, start=n * 100))


def assert_good_files_done(pipeline) -> None:
    for key in GOOD:
        entry = pipeline.file(key)
        assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED", 20, 0)


@pytest.mark.timeout(120)  # the processor used to hang for its whole timeout on these rows
def test_rows_dynamodb_would_refuse_are_rejects_and_the_batch_goes_on(pipeline):
    key = "inbound/acme/orders/hostile.csv"
    data = (
        b"order_id,amount\n"
        b"1,1.00\n" + b"k" * 3000 + b",2.00\n"  # a partition key over DynamoDB's 2048 bytes
        b"3,0E-1000\n"  # zero with an exponent DynamoDB cannot store
        b"4,0E+500\n"
        b"5,5.00\n"
    )
    pipeline.land(key, data)
    land_good_files(pipeline)  # other partners' files share the processor's batch
    result = pipeline.drain(timeout=60)
    assert result.failed == 0
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED_WITH_REJECTS", 4, 1)
    [reject] = pipeline.rejects(key)
    assert reject["line"] == 3
    assert "pk is 3006 bytes, more than DynamoDB's 2048" in reject["reason"]
    amounts = {i["order_id"]: i["amount"] for i in pipeline.items() if i["_source"].endswith(key)}
    assert amounts == {"1": 1, "3": 0, "4": 0, "5": 5}
    assert_good_files_done(pipeline)


@pytest.mark.timeout(120)
def test_a_jsonl_row_over_dynamodbs_item_size_is_a_reject(pipeline):
    key = "inbound/acme/events/big.jsonl"
    lines = [
        {"event_id": "a", "kind": "k"},
        {"event_id": "b", "kind": "x" * 500_000},
        {"event_id": "c", "kind": "k"},
    ]
    pipeline.land(key, "".join(json.dumps(line) + "\n" for line in lines).encode())
    result = pipeline.drain(timeout=60)
    assert result.failed == 0
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED_WITH_REJECTS", 2, 1)
    [reject] = pipeline.rejects(key)
    assert reject["line"] == 2
    assert "more than DynamoDB's 409600-byte limit" in reject["reason"]


def test_jsonl_lines_python_refuses_are_one_reject_each(pipeline):
    key = "inbound/acme/events/deep.jsonl"
    data = (
        b'{"event_id": "a", "kind": "k"}\n'
        + b'{"event_id": "b", "kind": "k", "n": '
        + b"9" * 5000
        + b"}\n"
        + b"[" * 100_000
        + b"]" * 100_000
        + b"\n"
        + b'{"event_id": "d", "kind": "k"}\n'
    )
    pipeline.land(key, data)
    result = pipeline.drain(timeout=60)
    assert result.failed == 0
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED_WITH_REJECTS", 2, 2)
    reasons = {r["line"]: r["reason"] for r in pipeline.rejects(key)}
    assert "4300" in reasons[2]
    assert reasons[3] == "invalid JSON: nested too deeply to parse"


def test_an_earlier_version_sent_again_is_ingested_afresh(pipeline):
    """A, then B, then A again under the same name: the last ingestion counts and ends
    PROCESSED (the first ingestion's chunk marker used to cancel its counters for ever)."""
    key = "inbound/acme/orders/resent.csv"
    a = orders(3)
    b = orders(5, start=50)
    for body in (a, b, a):
        pipeline.land(key, body)
        pipeline.drain(timeout=60)
        entry = pipeline.file(key)
        assert entry.status == "PROCESSED", entry
    assert (entry.rows_ok, entry.chunks_done, entry.chunks) == (3, 1, 1)
    assert pipeline.queue_depth() == 0


def test_an_unclosed_quote_fails_the_file_with_the_line_not_a_short_count(pipeline):
    key = "inbound/acme/notes/open-quote.csv"
    rows = [f'{i},"note {i}"' for i in range(1, 5001)]
    rows[1] = '2,"this quote never closes'
    pipeline.land(key, ("id,note\n" + "\n".join(rows) + "\n").encode())
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    assert "line 3:" in (entry.reason or "")
    assert "cannot be told apart" in (entry.reason or "")


def test_a_quoted_field_over_128_kib_is_read(pipeline):
    key = "inbound/acme/notes/long-note.csv"
    note = "x\n" * 100_000  # 200 KB over 100,000 lines, inside one quoted field
    data = f'id,note\n1,"{note}"\n2,"short"\n'.encode()
    pipeline.land(key, data)
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED", 2, 0)


def test_a_malformed_record_in_quoted_newlines_mode_is_one_reject(pipeline):
    key = "inbound/acme/notes/stray.csv"
    pipeline.land(key, b'id,note\n1,"a"b\n2,"two\nlines"\n3,c\n')
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED_WITH_REJECTS", 2, 1)
    assert [r["line"] for r in pipeline.rejects(key)] == [2]


def test_a_repeated_header_column_fails_the_file(pipeline):
    key = "inbound/acme/orders/twice.csv"
    pipeline.land(key, b"order_id,amount,amount\n1,1.00,2.00\n")
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    assert "HeaderError" in (entry.reason or "")
    assert "repeats column(s) ['amount']" in (entry.reason or "")
    assert pipeline.count_items() == 0


def test_a_huge_line_is_a_short_reject_in_bounded_memory(pipeline):
    """One 40 MB line (a gzip of a few KB, so the object itself is small): the reject keeps
    its first bytes only, and the processor never holds the line whole."""
    key = "inbound/acme/wide/one-huge-line.csv.gz"
    huge = b"7," + b"9" * (40 * 1024 * 1024) + b"\n"
    pipeline.land(key, gzip.compress(orders(2) + huge + b"8,8.00\n"))
    tracemalloc.start()
    try:
        pipeline.drain(timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED_WITH_REJECTS", 3, 1)
    [reject] = pipeline.rejects(key)
    assert reject["line"] == 4
    assert "longer than the feed's max_record_size (1048576 bytes)" in reject["reason"]
    assert len(reject["raw"]) <= 1024
    assert peak < 16 * 1024 * 1024, peak  # a few 1 MiB buffers, never the 40 MB line


def test_a_decompression_bomb_fails_at_once_with_the_reason(pipeline):
    key = "inbound/acme/orders/bomb.csv.gz"
    packed = gzip.compress(b"order_id,amount\n1," + b"0" * (100 * 1024 * 1024) + b"\n")
    assert len(packed) < 1024 * 1024
    pipeline.land(key, packed)
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    assert "InputLimitError" in (entry.reason or "")
    assert "max_compression_ratio" in (entry.reason or "")
    assert pipeline.count_items() == 0


def test_a_file_that_inflates_past_the_feeds_size_limit_fails(pipeline):
    key = "inbound/acme/limited/large.csv.gz"
    pipeline.land(key, gzip.compress(orders(10_000)))
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    assert "max_decompressed_size (65536 bytes)" in (entry.reason or "")
