"""Operator recovery: a file FAILED by a chunk that kept failing is completed exactly by
re-queueing its missing chunk, or by redriving the DLQ, once the cause is gone."""

from __future__ import annotations

from typing import IO, Any

import pytest

from ingest.adapters.s3 import S3Store
from ingest.adapters.sqs import DeadLetterQueue, SqsQueue
from ingest.domain.feeds import parse_feeds
from ingest.errors import StorageUnavailableError
from ingest.usecases.recovery import NotRequeueableError, redrive_dead_letters, requeue_file

ROWS = 600


@pytest.fixture
def feeds_yaml(feeds_yaml: str) -> str:
    """The default feeds, with orders files split into 4 KiB chunks."""
    return feeds_yaml.replace(
        'match: "inbound/{partner}/orders/*.csv"',
        'match: "inbound/{partner}/orders/*.csv"\n    chunk_size: 4KiB',
    )


def dead_letters(pipeline: Any, client: Any = None) -> DeadLetterQueue:
    sqs = client or pipeline.sqs
    return DeadLetterQueue(sqs, pipeline.dlq_url, SqsQueue(sqs, pipeline.queue_url), wait_seconds=0)


class FlakyRangeStore(S3Store):
    """Fails every read of the range that starts at ``bad_start`` while ``broken``."""

    def __init__(self, client: Any, bad_start: int) -> None:
        super().__init__(client)
        self.bad_start = bad_start
        self.broken = True

    def open_range(self, bucket: str, key: str, **kwargs: Any) -> IO[bytes]:
        if self.broken and kwargs["start"] == self.bad_start:
            raise StorageUnavailableError("s3", "GetObject", "injected: disk on fire")
        return super().open_range(bucket, key, **kwargs)


def _land_failing_file(pipeline, monkeypatch) -> tuple[str, FlakyRangeStore]:
    data = "order_id,amount\n" + "".join(f"{i},{i}.25\n" for i in range(ROWS))
    key = "inbound/acme/orders/big.csv"
    store = FlakyRangeStore(pipeline.s3, bad_start=4096 - 1)  # chunk 1 reads from start - 1
    pipeline.wire_processor(store=lambda _real: store)
    pipeline.land(key, data.encode())
    pipeline.drain(timeout=60)
    return key, store


def test_requeue_completes_a_failed_file_exactly(pipeline, monkeypatch, feeds_yaml):
    key, store = _land_failing_file(pipeline, monkeypatch)
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    assert "after 5 deliveries" in (entry.reason or "")
    assert entry.chunks_done == entry.chunks - 1
    assert len(pipeline.dlq_messages()) == 1

    store.broken = False
    feeds = parse_feeds(feeds_yaml)
    result = requeue_file(
        key,
        bucket=pipeline.bucket,
        feeds=feeds,
        store=S3Store(pipeline.s3),
        queue=SqsQueue(pipeline.sqs, pipeline.queue_url),
        ledger=pipeline.ledger,
    )
    assert result.requeued == [1]
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.chunks_done) == ("PROCESSED", ROWS, entry.chunks)
    assert len(pipeline.items()) == ROWS

    # A processed file has nothing left to re-queue … and says so.
    with pytest.raises(NotRequeueableError):
        requeue_file(
            key,
            bucket=pipeline.bucket,
            feeds=feeds,
            store=S3Store(pipeline.s3),
            queue=SqsQueue(pipeline.sqs, pipeline.queue_url),
            ledger=pipeline.ledger,
        )


def test_dlq_redrive_completes_a_failed_file_exactly(pipeline, monkeypatch):
    key, store = _land_failing_file(pipeline, monkeypatch)
    assert pipeline.file(key).status == "FAILED"
    store.broken = False
    # the DLQ message is received once by dlq_messages(); make it visible again first
    moved = redrive_dead_letters(dead_letters(pipeline))
    assert moved == 1
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED", ROWS, 0)
    assert len(pipeline.items()) == ROWS


def test_a_redriven_file_says_it_is_being_retried(pipeline, monkeypatch):
    """Between the redrive and its processing, the file no longer shows its old failure as if
    nothing were happening: it is QUEUED again, and the reason says why."""
    key, store = _land_failing_file(pipeline, monkeypatch)
    failed = pipeline.file(key)
    assert failed.status == "FAILED"
    store.broken = False
    moved = redrive_dead_letters(dead_letters(pipeline), ledger=pipeline.ledger)
    assert moved == 1
    retrying = pipeline.file(key)
    assert retrying.status == "QUEUED"
    assert (retrying.reason or "").startswith("retrying: redriven from the DLQ at ")
    assert f"(it had failed: {failed.reason})" in (retrying.reason or "")
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.reason) == ("PROCESSED", ROWS, None)


class ShortPolls:
    """An SQS client whose receives on the DLQ come back empty every other time (a short
    poll that misses messages), otherwise the real client."""

    def __init__(self, client: Any, dlq_url: str) -> None:
        self._client = client
        self._dlq_url = dlq_url
        self.empty = 0
        self._calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def receive_message(self, **kwargs: Any) -> Any:
        self._calls += 1
        if kwargs["QueueUrl"] == self._dlq_url and self._calls % 2:
            self.empty += 1
            return {"Messages": []}
        return self._client.receive_message(**kwargs)


def test_redrive_goes_on_while_the_dlq_still_counts_messages(pipeline):
    """A receive that comes back empty used to end the redrive with messages left behind."""
    bodies = [f"not a chunk message {n}" for n in range(25)]
    for body in bodies:
        pipeline.sqs.send_message(QueueUrl=pipeline.dlq_url, MessageBody=body)
    client = ShortPolls(pipeline.sqs, pipeline.dlq_url)
    moved = redrive_dead_letters(dead_letters(pipeline, client))
    assert client.empty >= 3
    assert moved == 25
    assert pipeline.queue_depth(pipeline.dlq_url) == 0
    got = []
    while batch := pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_url, MaxNumberOfMessages=10
    ).get("Messages"):
        got += [m["Body"] for m in batch]
    assert sorted(got) == sorted(bodies)


def _park_in_dlq(pipeline, key: str) -> None:
    """Land ``key`` and move its chunk message from the ingest queue to the DLQ untouched
    (as if its deliveries had run out), leaving the file QUEUED."""
    pipeline.land(key, b"order_id,amount\n1,1.00\n")
    (message,) = pipeline.sqs.receive_message(QueueUrl=pipeline.queue_url)["Messages"]
    pipeline.sqs.send_message(QueueUrl=pipeline.dlq_url, MessageBody=message["Body"])
    pipeline.sqs.delete_message(QueueUrl=pipeline.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_dlq_list_says_what_each_message_is_and_leaves_it_there(pipeline, monkeypatch):
    from ingest.usecases.inspection import dead_letter_report

    key, _store = _land_failing_file(pipeline, monkeypatch)
    other = "inbound/acme/orders/parked.csv"
    _park_in_dlq(pipeline, other)
    pipeline.sqs.send_message(QueueUrl=pipeline.dlq_url, MessageBody="not json")

    dlq = dead_letters(pipeline)
    report = dead_letter_report(dlq.peek(), pipeline.ledger)
    assert [(d.key, d.chunk) for d in report] == [(None, None), (key, 1), (other, 0)]
    junk, failed, parked = report
    assert junk.last_error == "not a chunk message"
    assert failed.receive_count >= 5  # its deliveries from the ingest queue, kept by SQS
    assert failed.version == pipeline.file(key).version
    assert "after 5 deliveries" in (failed.last_error or "")
    assert failed.first_failure_at and failed.last_failure_at
    assert failed.first_failure_at <= failed.last_failure_at
    assert (parked.last_error, parked.last_failure_at) == (None, None)  # its file is not FAILED
    # looking moved nothing, and every message can be taken again at once
    assert pipeline.queue_depth(pipeline.dlq_url) == 3
    assert len(dlq.peek()) == 3


def test_dlq_redrive_of_one_file_leaves_the_others(pipeline, monkeypatch):
    key, store = _land_failing_file(pipeline, monkeypatch)
    other = "inbound/acme/orders/parked.csv"
    _park_in_dlq(pipeline, other)
    store.broken = False

    moved = redrive_dead_letters(dead_letters(pipeline), ledger=pipeline.ledger, key=key)
    assert moved == 1
    (left,) = dead_letters(pipeline).peek()
    assert other in left.body
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.chunks_done) == ("PROCESSED", ROWS, entry.chunks)
    assert len([i for i in pipeline.items() if i["_source"].endswith(key)]) == ROWS  # no dupes
    assert pipeline.file(other).status == "QUEUED"  # still waiting in the DLQ
    assert pipeline.queue_depth(pipeline.dlq_url) == 1
