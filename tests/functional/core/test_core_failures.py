"""Failures that must stay visible: a poison chunk ends in the DLQ with its file FAILED while
the rest of its batch succeeds; bad rows are set aside with a reason each."""

from __future__ import annotations

import gzip
import json
from typing import IO, Any

import pytest

from ingest.errors import StorageUnavailableError

GOOD = [f"inbound/acme/orders/good-{n}.csv" for n in range(3)]


def orders(rows: int, start: int = 0) -> bytes:
    body = "".join(f"{i},{i}.50,{i % 4},2026-11-01T00:00:00Z\n" for i in range(start, start + rows))
    return ("order_id,amount,quantity,placed_at\n" + body).encode()


class BrokenReads:
    """The real S3 store, except that reading ``key`` always fails as retryable I/O."""

    def __init__(self, store: Any, key: str) -> None:
        self._store = store
        self._key = key
        self.attempts = 0

    def open_range(self, bucket: str, key: str, **kwargs: Any) -> IO[bytes]:
        if key == self._key:
            self.attempts += 1
            raise StorageUnavailableError("s3", "GetObject", "injected: connection reset")
        return self._store.open_range(bucket, key, **kwargs)

    def put_file(self, *args: Any, **kwargs: Any) -> None:
        self._store.put_file(*args, **kwargs)


def land_batch(pipeline, poison_key: str, poison: bytes) -> None:
    """Three good files and the poison one, all queued before the processor runs, so the
    poison chunk shares its first batch with the good chunks."""
    for n, key in enumerate(GOOD):
        pipeline.land(key, orders(50, start=n * 1000))
    pipeline.land(poison_key, poison)
    assert pipeline.queue_depth() == 4


def assert_good_files_done(pipeline) -> None:
    items = pipeline.items()
    for n, key in enumerate(GOOD):
        entry = pipeline.file(key)
        assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED", 50, 0)
        ids = sorted(int(i["order_id"]) for i in items if i["_source"].endswith(key))
        assert ids == list(range(n * 1000, n * 1000 + 50))


def dead_letters(pipeline) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in pipeline.dlq_messages()]


def test_retryable_poison_chunk_goes_to_the_dlq_after_5_receives(pipeline):
    poison_key = "inbound/acme/orders/unreadable.csv"
    store = pipeline.wire_processor(store=lambda real: BrokenReads(real, poison_key)).store
    land_batch(pipeline, poison_key, orders(10, start=10_000))

    result = pipeline.drain(timeout=90)
    assert store.attempts == 5  # the queue's maxReceiveCount
    assert result.failed == 5
    assert_good_files_done(pipeline)
    (dead,) = dead_letters(pipeline)
    assert (dead["key"], dead["index"]) == (poison_key, 0)
    entry = pipeline.file(poison_key)
    assert entry.status == "FAILED"
    assert entry.reason == (
        "chunk 0: StorageUnavailableError: s3 GetObject failed: injected: connection reset "
        "(after 5 deliveries; message moved to the DLQ)"
    )
    assert (entry.rows_ok, entry.chunks_done) == (0, 0)
    assert pipeline.count_items() == 150


def test_permanent_poison_chunk_is_failed_at_once_and_still_reaches_the_dlq(pipeline):
    poison_key = "inbound/acme/orders/truncated.csv.gz"
    truncated = gzip.compress(orders(500, start=10_000))[:-40]
    land_batch(pipeline, poison_key, truncated)

    # the first delivery already marks the file FAILED with the reason
    pipeline.event_source().poll_once()
    entry = pipeline.file(poison_key)
    assert entry.status == "FAILED"
    assert entry.reason is not None
    assert entry.reason.startswith("chunk 0: CorruptInputError: inbound/acme/orders/truncated")
    assert "cannot decompress gzip" in entry.reason
    assert_good_files_done(pipeline)

    pipeline.drain(timeout=90)
    (dead,) = dead_letters(pipeline)
    assert dead["key"] == poison_key
    entry = pipeline.file(poison_key)
    assert entry.status == "FAILED"
    assert entry.reason is not None and entry.reason.endswith(
        "(after 5 deliveries; message moved to the DLQ)"
    )


def test_a_file_with_ten_percent_bad_rows(pipeline):
    """Every tenth row is bad in a different way; each gets one reject line with its reason,
    the good rows all land, and the file ends PROCESSED_WITH_REJECTS."""
    pipeline.setenv("CHUNK_SIZE_BYTES", str(4 * 1024))  # rejects spread over several chunks
    key = "inbound/acme/orders/mixed.csv"
    defects = [
        (
            "{i},not-a-number,1,2026-11-01T00:00:00Z",
            "field 'amount': not a decimal: 'not-a-number'",
        ),
        ("{i},1.5,two,2026-11-01T00:00:00Z", "field 'quantity': not an integer: 'two'"),
        (",1.5,1,2026-11-01T00:00:00Z", "field 'order_id': required but empty"),
        ("{i},1.5,1,yesterday", "field 'placed_at': not a timestamp (ISO 8601): 'yesterday'"),
        ("{i},1.5,1", "expected 4 columns, got 3"),
        ("{i},NaN,1,2026-11-01T00:00:00Z", "field 'amount': not a finite decimal: 'NaN'"),
        ("{i},,1,2026-11-01T00:00:00Z", "field 'amount': required but empty"),
    ]
    lines = ["order_id,amount,quantity,placed_at"]
    expected_rejects = []
    for i in range(1000):
        if i % 10 == 9:
            template, reason = defects[(i // 10) % len(defects)]
            raw = template.format(i=i)
            expected_rejects.append({"line": i + 2, "reason": reason, "raw": raw})
            lines.append(raw)
        else:
            lines.append(f"{i},{i}.25,{i % 3},2026-11-01T12:00:00+02:00")
    pipeline.land(key, ("\n".join(lines) + "\n").encode())

    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert entry.chunks > 3
    assert (entry.status, entry.rows_ok, entry.rows_rejected, entry.chunks_done) == (
        "PROCESSED_WITH_REJECTS",
        900,
        100,
        entry.chunks,
    )
    assert pipeline.rejects(key) == expected_rejects
    items = pipeline.items()
    assert sorted(int(i["order_id"]) for i in items) == [i for i in range(1000) if i % 10 != 9]


@pytest.mark.parametrize("body", ["not json", json.dumps({"v": 1, "key": "x"})])
def test_a_malformed_message_is_reported_failed_not_dropped(pipeline, body):
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=body)
    poll = pipeline.event_source().poll_once()
    assert (poll.received, poll.failed) == (1, 1)
    assert pipeline.queue_depth() == 1  # left for redrive to the DLQ


def test_numbers_dynamodb_cannot_hold_are_row_rejects_not_a_poison_chunk(pipeline):
    """An out-of-range number used to fail the whole BatchWriteItem, and so the chunk, on
    every delivery: now each is one reject and the rest of the file lands."""
    key = "inbound/acme/orders/huge-numbers.csv"
    data = (
        orders(60)
        .replace(b"\n7,7.50,", b"\n7,1e200,")
        .replace(b"\n8,8.50,0,", b"\n8,8.50,1" + b"0" * 40 + b",")
    )
    pipeline.land(key, data)
    result = pipeline.drain(timeout=60)
    assert result.failed == 0
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED_WITH_REJECTS", 58, 2)
    reasons = [(r["line"], r["reason"]) for r in pipeline.rejects(key)]
    assert reasons == [
        (9, "field 'amount': '1e200' is outside DynamoDB's number range"),
        (10, "field 'quantity': more than 38 significant digits"),
    ]
    assert pipeline.count_items() == 58
