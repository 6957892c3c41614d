"""The record sink's parallel batch writers, and the processor's retry backoff."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ingest.adapters import DynamoRecordSink
from ingest.errors import StorageUnavailableError
from ingest.processor import retry_delay


def _tables(n: int) -> list[Any]:
    return [boto3.session.Session().resource("dynamodb").Table("records") for _ in range(n)]


def _item(i: int, value: str) -> dict[str, Any]:
    return {"pk": f"K#{i % 700}", "sk": "S", "value": value, "n": i}


def test_parallel_writers_write_everything_and_keep_the_file_order_per_key(pipeline):
    items = [_item(i, f"v{i}") for i in range(3000)]
    written = DynamoRecordSink(*_tables(4)).write(iter(items))
    assert written == 3000
    stored = {i["pk"]: i for i in pipeline.items()}
    assert len(stored) == 700
    # the last row with each key wins, exactly as with one sequential writer
    last = {}
    for item in items:
        last[item["pk"]] = item["n"]
    assert {k: int(v["n"]) for k, v in stored.items()} == last


def test_a_failing_writer_fails_the_write_without_hanging(pipeline):
    tables = _tables(3)
    bad = tables[1]

    def refuse(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "no"}},
            "BatchWriteItem",
        )

    bad.meta.client.batch_write_item = refuse
    with pytest.raises(StorageUnavailableError):
        DynamoRecordSink(*tables).write(_item(i, "x") for i in range(5000))


def test_a_failing_producer_still_flushes_and_joins(pipeline):
    def items():
        for i in range(400):
            yield {"pk": f"P#{i}", "sk": "S"}
        raise ValueError("the stream broke")

    with pytest.raises(ValueError, match="the stream broke"):
        DynamoRecordSink(*_tables(4)).write(items())
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
        def write(self, items: Any) -> int:
            raise StorageUnavailableError("dynamodb", "BatchWriteItem", "injected throttling")

    pipeline.wire_processor(sink=lambda _real: Throttled())
    pipeline.land("inbound/acme/orders/slow.csv", b"order_id,amount\n1,1.00\n")
    source = pipeline.event_source()
    first = source.poll_once()
    assert (first.received, first.failed) == (1, 1)
    time.sleep(1.5)  # past the test queue's own 1 s visibility timeout
    assert source.poll_once().received == 0
    attrs = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
