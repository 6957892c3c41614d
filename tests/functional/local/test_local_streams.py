"""The local DynamoDB stream mapping (ingest_local/streams.py) on moto's own stream (server
mode: moto answers dynamodbstreams there): batches in order, filters, partial batch failures
checkpointed before the first failed record, bisection and the OnFailure record after the
retries, as Lambda's stream mappings do."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from ingest_local.streams import DynamoStreamSource, StreamMappingSpec

TABLE = "ledger"
FILTER = json.dumps({"dynamodb": {"Keys": {"sk": {"S": ["FILE"]}}}})


@pytest.fixture
def aws(moto_server: str) -> dict[str, Any]:
    clients = {
        s: boto3.client(s, region_name="us-east-1", endpoint_url=moto_server)
        for s in ("dynamodb", "dynamodbstreams", "sqs")
    }
    table = clients["dynamodb"].create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    clients["stream_arn"] = table["TableDescription"]["LatestStreamArn"]
    clients["dlq"] = clients["sqs"].create_queue(QueueName="failed")["QueueUrl"]
    return clients


def _put(aws: dict[str, Any], *names: str, sk: str = "FILE") -> None:
    for name in names:
        item = {"pk": {"S": f"FILE#{name}"}, "sk": {"S": sk}, "status": {"S": "PROCESSED"}}
        aws["dynamodb"].put_item(TableName=TABLE, Item=item)


def _source(
    aws: dict[str, Any], invoke: Callable[[dict[str, Any]], Any], **spec: Any
) -> DynamoStreamSource:
    mapping = StreamMappingSpec(function="F", table=TABLE, filters=[FILTER], **spec)
    return DynamoStreamSource(
        aws["dynamodbstreams"],
        aws["stream_arn"],
        invoke,
        mapping,
        sqs_client=aws["sqs"],
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:F",
        retry_delay=0,
    )


def _keys(event: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["Keys"]["pk"]["S"].removeprefix("FILE#") for r in event["Records"]]


def test_batches_in_order_filtered_and_shaped_as_lambda_builds_them(aws: dict[str, Any]) -> None:
    _put(aws, "a", "b")
    _put(aws, "a", sk="CHUNK#1")  # filtered out: never delivered, never blocks
    _put(aws, "c", "d", "e")
    seen: list[dict[str, Any]] = []
    source = _source(aws, lambda e: seen.append(e) or {"batchItemFailures": []}, batch_size=2)
    while source.poll_once(0):
        pass
    assert [_keys(e) for e in seen] == [["a", "b"], ["c", "d"], ["e"]]
    record = seen[0]["Records"][0]
    assert record["eventSource"] == "aws:dynamodb" and record["eventName"] == "INSERT"
    assert record["eventSourceARN"] == aws["stream_arn"]
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    assert record["dynamodb"]["NewImage"]["status"] == {"S": "PROCESSED"}
    assert not source.busy()


def test_a_reported_failure_is_retried_from_that_record(aws: dict[str, Any]) -> None:
    _put(aws, "a", "b", "c")
    seen: list[list[str]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(_keys(event))
        if len(seen) == 1:  # b fails the first time: a is checkpointed, b and c come again
            return {"batchItemFailures": [{"itemIdentifier": _seq(event, 1)}]}
        return {"batchItemFailures": []}

    source = _source(aws, invoke, batch_size=10, report_batch_item_failures=True)
    while source.poll_once(0):
        pass
    assert seen == [["a", "b", "c"], ["b", "c"]]


def _seq(event: dict[str, Any], index: int) -> str:
    return str(event["Records"][index]["dynamodb"]["SequenceNumber"])


def test_a_failing_batch_is_bisected_then_sent_to_on_failure(aws: dict[str, Any]) -> None:
    _put(aws, "a", "b", "c", "d")
    seen: list[list[str]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(_keys(event))
        if "a" in _keys(event):
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    source = _source(aws, invoke, batch_size=4, bisect=True, max_retries=2, on_failure=aws["dlq"])
    for _ in range(10):
        source.poll_once(0)
    # 4, halved to 2, then 1: after 2 retries the batch [a] is given up; the rest goes on
    assert seen == [["a", "b", "c", "d"], ["a", "b"], ["a"], ["b", "c", "d"]]
    (message,) = aws["sqs"].receive_message(QueueUrl=aws["dlq"]).get("Messages", [])
    record = json.loads(message["Body"])
    info = record["DDBStreamBatchInfo"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["functionArn"].endswith(":function:F")
    assert (info["batchSize"], info["streamArn"]) == (1, aws["stream_arn"])
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
