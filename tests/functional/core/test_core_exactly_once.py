"""Exactly-once accounting: duplicate deliveries, a crash half way through a chunk, and
DynamoDB throttling all end with every row written once and exact ledger counters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from ingest.adapters.record_sink import RECORDS_CLIENT_CONFIG, DynamoRecordSink
from ingest.errors import StorageUnavailableError
from ingest_local.lambda_service import in_process_invoker, s3_object_created_event

KEY = "inbound/acme/orders/dup.csv"
ROWS = 1200


def orders_csv(rows: int = ROWS) -> bytes:
    lines = ["order_id,amount,quantity,placed_at"]
    lines += [f"{i},{i}.{i % 100:02d},{i % 9},2026-11-0{1 + i % 9}T10:00:00Z" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def small_chunks(pipeline):
    """Fanout splits files into 8 KiB chunks (the CHUNK_SIZE_BYTES setting)."""
    pipeline.setenv("CHUNK_SIZE_BYTES", str(8 * 1024))
    return pipeline


def assert_exact(pipeline, key: str = KEY, rows: int = ROWS) -> None:
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED", rows, 0)
    assert entry.chunks_done == entry.chunks
    items = pipeline.items()
    assert len(items) == rows
    assert sorted(int(i["order_id"]) for i in items) == list(range(rows))
    # line numbers are file-wide whichever chunk wrote the item
    assert all(i["_line"] == int(i["order_id"]) + 2 for i in items)


def test_every_message_delivered_twice_in_one_batch(small_chunks):
    """The event source hands every batch to the function twice (at-least-once delivery)."""
    from lambdas import processor

    pipeline = small_chunks
    result = pipeline.land(KEY, orders_csv())
    chunks = result["files"][0]["chunks"]
    assert chunks >= 4
    once = in_process_invoker(processor.handler, "ProcessorFunction")
    invocations = []

    def twice(event: dict[str, Any]) -> Any:
        invocations.append(len(event["Records"]))
        first = once(event)
        second = once(event)
        assert first == second == {"batchItemFailures": []}
        return second

    pipeline.drain(invoke=twice, timeout=60)
    assert sum(invocations) == chunks
    assert_exact(pipeline)
    assert pipeline.file(KEY).chunks == chunks


def test_every_message_body_sent_again_as_a_new_message(small_chunks):
    """Each chunk message is duplicated on the queue; duplicates arrive in later batches,
    after the file is already complete."""
    from lambdas import processor

    pipeline = small_chunks
    chunks = pipeline.land(KEY, orders_csv())["files"][0]["chunks"]
    once = in_process_invoker(processor.handler, "ProcessorFunction")
    bodies: list[str] = []

    def duplicating(event: dict[str, Any]) -> Any:
        for record in event["Records"]:
            if record["body"] not in bodies:
                bodies.append(record["body"])
                pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=record["body"])
        return once(event)

    result = pipeline.drain(invoke=duplicating, timeout=60)
    assert len(bodies) == chunks
    assert (result.received, result.succeeded, result.failed) == (2 * chunks, 2 * chunks, 0)
    assert_exact(pipeline)


def test_duplicate_deliveries_of_a_file_with_rejects_count_rejects_once(small_chunks):
    from lambdas import processor

    pipeline = small_chunks
    data = orders_csv().replace(b"\n7,", b"\nbad-row-without-amount\n7,")
    pipeline.land(KEY, data)
    once = in_process_invoker(processor.handler, "ProcessorFunction")
    pipeline.drain(invoke=lambda event: (once(event), once(event))[1], timeout=60)
    entry = pipeline.file(KEY)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == (
        "PROCESSED_WITH_REJECTS",
        ROWS,
        1,
    )
    rejects = pipeline.rejects(KEY)
    assert [(r["line"], r["raw"]) for r in rejects] == [(9, "bad-row-without-amount")]


class CrashingSink:
    """Writes ``after`` items of the ``nth`` chunk it is given, then dies (a Lambda that is
    killed half way through a chunk); every other write goes through untouched."""

    def __init__(self, sink: Any, *, nth: int, after: int) -> None:
        self._sink = sink
        self._nth = nth
        self._after = after
        self.calls = 0
        self.crashed = False

    def write(self, rows: Any, reject: Any, fence: Any = None) -> int:
        self.calls += 1
        if self.calls != self._nth:
            return int(self._sink.write(rows, reject, fence))

        def until_crash() -> Iterator[Any]:
            for n, row in enumerate(rows):
                if n == self._after:
                    self.crashed = True
                    raise RuntimeError("simulated crash half way through the chunk")
                yield row

        return int(self._sink.write(until_crash(), reject, fence))


def test_crash_after_writing_half_a_chunk_then_redelivery_is_exact(small_chunks):
    pipeline = small_chunks
    sink = CrashingSink(None, nth=2, after=100)
    pipeline.wire_processor(sink=lambda real: setattr(sink, "_sink", real) or sink)
    chunks = pipeline.land(KEY, orders_csv())["files"][0]["chunks"]
    assert chunks >= 4

    # One batch: every chunk but the second finishes, the second dies after 100 items.
    poll = pipeline.event_source().poll_once()
    assert (poll.received, poll.succeeded, poll.failed) == (chunks, chunks - 1, 1)
    assert sink.crashed
    entry = pipeline.file(KEY)
    assert entry.status == "PROCESSING"
    assert entry.chunks_done == chunks - 1
    # the half chunk's items are in the table, but not in the counters
    assert pipeline.count_items() == entry.rows_ok + 100
    assert entry.rows_ok < ROWS

    # SQS redelivers the failed message after its visibility timeout
    result = pipeline.drain(timeout=60)
    assert (result.received, result.succeeded) == (1, 1)
    assert_exact(pipeline)
    assert pipeline.dlq_messages() == []


class _Raw:
    """The raw body botocore reads a response from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class BatchWriteFaults:
    """A ``before-send`` hook for BatchWriteItem: answers some calls itself, as DynamoDB does
    under load, with throttling errors or with every item returned as UnprocessedItems."""

    def __init__(self, plan: list[str]) -> None:
        self.plan = plan  # per call: "throttle", "unprocessed" or "ok" (repeats its last entry)
        self.calls = 0
        self.seen = {"throttle": 0, "unprocessed": 0, "ok": 0}

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        action = self.plan[min(self.calls, len(self.plan) - 1)]
        self.calls += 1
        self.seen[action] += 1
        if action == "throttle":
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was "
                "exceeded.",
            }
            return self._response(request, 400, body)
        if action == "unprocessed":
            sent = json.loads(request.body)
            return self._response(request, 200, {"UnprocessedItems": sent["RequestItems"]})
        return None  # let moto answer

    @staticmethod
    def _response(request: Any, status: int, body: dict[str, Any]) -> AWSResponse:
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
        return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))


def faulty_sink(pipeline, faults: BatchWriteFaults, config: Config = RECORDS_CLIENT_CONFIG) -> Any:
    """The real DynamoDB sink over a client whose BatchWriteItem calls meet ``faults``."""
    client = boto3.client("dynamodb", region_name="us-east-1", config=config)
    # first, so that it answers before moto's own before-send handler
    client.meta.events.register_first("before-send.dynamodb.BatchWriteItem", faults)
    sink = DynamoRecordSink(client, pipeline.records_table, writers=1)
    pipeline.wire_processor(sink=lambda _real: sink)
    return client


def test_batch_write_throttling_and_unprocessed_items_lose_nothing(small_chunks):
    """Throttled calls are retried by botocore; UnprocessedItems are re-sent by the sink."""
    pipeline = small_chunks
    plan = ["ok", "throttle", "ok", "unprocessed", "throttle", "throttle", "ok", "unprocessed"]
    faults = BatchWriteFaults(plan * 2 + ["ok"])
    faulty_sink(pipeline, faults)
    pipeline.land(KEY, orders_csv())
    result = pipeline.drain(timeout=120)
    assert result.failed == 0  # absorbed inside the invocation
    assert faults.seen["throttle"] == 6
    assert faults.seen["unprocessed"] == 4
    # 1200 items in batches of 25 with nothing lost: at least 48 calls reached moto
    assert faults.seen["ok"] >= ROWS // 25
    assert_exact(pipeline)


def test_throttling_beyond_the_sdk_retries_fails_the_message_and_sqs_retries_it(small_chunks):
    """When throttling outlasts botocore's attempts, the chunk fails as retryable, SQS
    redelivers it, and the replay is exact."""
    pipeline = small_chunks
    few_retries = RECORDS_CLIENT_CONFIG.merge(
        Config(retries={"mode": "standard", "total_max_attempts": 2})
    )
    # calls 3 and 4 (one call and its only retry) are throttled: that chunk's write fails
    faults = BatchWriteFaults(["ok", "ok", "throttle", "throttle", "ok"])
    faulty_sink(pipeline, faults, few_retries)
    pipeline.land(KEY, orders_csv())
    result = pipeline.drain(timeout=120)
    assert result.failed == 1
    assert faults.seen["throttle"] == 2
    assert_exact(pipeline)
    assert pipeline.dlq_messages() == []


class QueueThatDiesAfterOneBatch:
    """Sends the first ten chunk messages for real, then fails (a fanout that dies half way
    through queueing a file)."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        self.broken = True

    def send_all(self, bodies: Any) -> int:
        if not self.broken:
            return int(self._queue.send_all(bodies))
        self.broken = False
        first = [body for _, body in zip(range(10), bodies, strict=False)]
        self._queue.send_all(first)
        raise StorageUnavailableError("sqs", "SendMessageBatch", "injected: connection reset")


def test_fanout_dying_half_way_through_queueing_then_retried_is_exact(small_chunks):
    """S3 retries a failed asynchronous invocation; the retry re-queues every chunk and the
    ten sent twice are counted once."""
    pipeline = small_chunks
    pipeline.setenv("CHUNK_SIZE_BYTES", "3000")  # about 15 chunks: more than one batch of ten
    pipeline.wire_fanout(queue=QueueThatDiesAfterOneBatch)
    data = orders_csv()
    resp = pipeline.put(KEY, data)
    event = s3_object_created_event(
        pipeline.bucket, KEY, size=len(data), etag=resp["ETag"], version_id=resp["VersionId"]
    )
    with pytest.raises(StorageUnavailableError):
        pipeline.fanout(event)
    entry = pipeline.file(KEY)
    assert entry.status == "RECEIVED"  # not QUEUED: the retry must not be taken as a duplicate
    assert pipeline.queue_depth() == 10

    result = pipeline.fanout(event)
    chunks = result["files"][0]["chunks"]
    assert (result["files"][0]["outcome"], chunks > 10) == ("QUEUED", True)
    assert pipeline.queue_depth() == chunks + 10
    pipeline.drain(timeout=120)
    assert_exact(pipeline)


class LedgerThatDiesBeforeFinishing:
    """The real ledger, except that the first finish_if_complete call fails: the chunk was
    counted but the function died before it could close the file."""

    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def finish_if_complete(
        self, key: str, version: str, ingestion: str | None = None, **kwargs: Any
    ) -> Any:
        entry = self._ledger.get_file(key)
        if not self.failures and entry.chunks_done == entry.chunks:
            self.failures += 1
            raise StorageUnavailableError("dynamodb", "UpdateItem", "injected: timeout")
        return self._ledger.finish_if_complete(key, version, ingestion, **kwargs)


def test_death_between_counting_the_last_chunk_and_closing_the_file(small_chunks):
    pipeline = small_chunks
    ledger = pipeline.wire_processor(ledger=LedgerThatDiesBeforeFinishing).ledger
    pipeline.land(KEY, orders_csv())
    result = pipeline.drain(timeout=60)
    assert ledger.failures == 1
    assert result.failed == 1
    assert_exact(pipeline)
