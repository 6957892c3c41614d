"""The record sink's parallel batch writers, and the processor's retry backoff."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from msgspec.structs import replace

from ingest.adapters.record_sink import RECORDS_CLIENT_CONFIG, DynamoRecordSink, RecordRow
from ingest.errors import StorageUnavailableError
from ingest.usecases.chunk_messages import retry_delay


def _client() -> Any:
    return boto3.client("dynamodb", config=RECORDS_CLIENT_CONFIG)


def _sink(writers: int, client: Any = None) -> DynamoRecordSink:
    return DynamoRecordSink(client or _client(), "records", writers=writers)


def _item(i: int, value: str) -> dict[str, Any]:
    return {"pk": f"K#{i % 700}", "sk": "S", "value": value, "n": i}


def _rows(items: Any) -> Any:
    return (RecordRow(line=n + 1, raw="", item=item) for n, item in enumerate(items))


def _no_rejects(line: int, reason: str, raw: str) -> None:
    raise AssertionError(f"unexpected reject of line {line}: {reason}")


def test_parallel_writers_write_everything_and_keep_the_file_order_per_key(pipeline):
    items = [_item(i, f"v{i}") for i in range(3000)]
    written = _sink(4).write(_rows(items), _no_rejects)
    assert written == 3000
    stored = {i["pk"]: i for i in pipeline.items()}
    assert len(stored) == 700
    # the last row with each key wins, exactly as with one sequential writer
    last = {}
    for item in items:
        last[item["pk"]] = item["n"]
    assert {k: int(v["n"]) for k, v in stored.items()} == last


def test_a_failing_writer_fails_the_write_without_hanging(pipeline):
    client = _client()
    real = client.batch_write_item
    calls = []

    def refuse_some(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) % 3 == 2:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "no"}},
                "BatchWriteItem",
            )
        return real(**kwargs)

    client.batch_write_item = refuse_some
    with pytest.raises(StorageUnavailableError):
        _sink(3, client).write(_rows(_item(i, "x") for i in range(5000)), _no_rejects)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("writers", [1, 4])
def test_a_writer_that_fails_on_its_last_flush_does_not_hang(pipeline, writers):
    """The writer's final flush (after its lane's end marker) fails: the write must raise,
    not wait for more items (the processor used to hang for its whole timeout here)."""
    client = _client()
    sink = _sink(writers, client)

    def refuse_small_batches(params: dict[str, Any], **_: Any) -> None:
        # the body the sink encoded: only the last, partial batches are refused
        if len(json.loads(params["body"])["RequestItems"]["records"]) < 25:
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "injected"}},
                "BatchWriteItem",
            )

    client.meta.events.register("before-call.dynamodb.BatchWriteItem", refuse_small_batches)
    with pytest.raises(StorageUnavailableError, match="injected"):
        sink.write(_rows(_item(i, "x") for i in range(101)), _no_rejects)
    if writers == 1:
        assert pipeline.count_items() == 100  # its four full batches went through


def test_every_batch_goes_out_as_one_encoded_call_binary_values_included(pipeline):
    """The sink's encoded body is what DynamoDB gets: nothing falls back to PutItem (which it
    would if DynamoDB saw an empty batch), and a binary value goes the ordinary way."""
    client = _client()

    def no_put_item(**kwargs: Any) -> Any:
        raise AssertionError("a batch fell back to PutItem")

    client.put_item = no_put_item
    items = [_item(i, "x") for i in range(60)]
    items[7]["blob"] = b"\x00\x01binary"
    assert _sink(1, client).write(_rows(items), _no_rejects) == 60
    stored = {i["pk"]: i for i in pipeline.items()}
    assert len(stored) == 60
    assert bytes(stored["K#7"]["blob"].value) == b"\x00\x01binary"
    assert stored["K#59"]["value"] == "x" and int(stored["K#59"]["n"]) == 59


def test_an_item_dynamodb_refuses_is_rejected_and_the_rest_are_written(pipeline):
    """An item that breaks a DynamoDB limit the core did not check fails its whole batch: the
    sink finds it by writing that batch item by item, and rejects only it."""
    rejected: list[tuple[int, str]] = []
    items = [_item(i, "x") for i in range(60)]
    items[30] = {"pk": "K#" + "x" * 3000, "sk": "S", "value": "too long a key"}
    written = _sink(4).write(
        _rows(items), lambda line, reason, raw: rejected.append((line, reason))
    )
    assert written == 59
    assert [line for line, _ in rejected] == [31]
    assert "refused" in rejected[0][1] and "2048" in rejected[0][1]
    assert pipeline.count_items() == 59


def test_a_value_the_serializer_refuses_is_a_reject_not_an_error(pipeline):
    rejected: list[tuple[int, str]] = []
    items = [{"pk": "A", "sk": "S", "n": Decimal("0E-1000")}, {"pk": "B", "sk": "S"}]
    written = _sink(1).write(
        _rows(items), lambda line, reason, raw: rejected.append((line, reason))
    )
    assert written == 1
    assert rejected and rejected[0][0] == 1 and "Clamped" in rejected[0][1]


def test_a_failing_producer_still_flushes_and_joins(pipeline):
    def items():
        for i in range(400):
            yield {"pk": f"P#{i}", "sk": "S"}
        raise ValueError("the stream broke")

    with pytest.raises(ValueError, match="the stream broke"):
        _sink(4).write(_rows(items()), _no_rejects)
    assert pipeline.count_items() == 400  # what was read before the break is written


@pytest.mark.parametrize(
    ("count", "expected"), [(1, 30), (2, 60), (3, 120), (4, 240), (5, 0), (9, 0)]
)
def test_retry_delay_doubles_and_releases_the_last_delivery_at_once(count, expected):
    assert retry_delay(count, base=30, max_receive_count=5) == expected
    assert retry_delay(count, base=0, max_receive_count=5) is None


def test_a_failed_chunk_comes_back_after_the_backoff_not_the_queue_timeout(pipeline):
    pipeline.setenv("RETRY_BACKOFF_SECONDS", "30")

    class Throttled:
        def write(self, rows: Any, reject: Any, fence: Any = None) -> int:
            raise StorageUnavailableError("dynamodb", "BatchWriteItem", "injected throttling")

    class Recorded:
        """The real redelivery port, recording what it was asked."""

        def __init__(self, real: Any) -> None:
            self.real = real
            self.delays: list[int] = []

        def delay(self, receipt_handle: str, seconds: int) -> None:
            self.delays.append(seconds)
            self.real.delay(receipt_handle, seconds)

    ports = pipeline.wire_processor(sink=lambda _real: Throttled())
    from lambdas import processor

    recorded = Recorded(ports.redelivery)
    wired = processor.wiring()
    processor.wiring.use(replace(wired, ports=replace(wired.ports, redelivery=recorded)))
    pipeline.land("inbound/acme/orders/slow.csv", b"order_id,amount\n1,1.00\n")
    source = pipeline.event_source()
    first = source.poll_once()
    assert (first.received, first.failed) == (1, 1)
    assert recorded.delays == [30]  # the first retry's backoff, not the queue's 1 s
    attrs = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
