"""The Lambda service emulation: handler lookup, context, events, SQS event source semantics."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any
from urllib.parse import unquote_plus

import lsvc_handlers
import pytest

from ingest_local.lambda_service import (
    DrainTimeoutError,
    HandlerNotFoundError,
    LambdaContext,
    SqsEventSource,
    failed_message_ids,
    in_process_invoker,
    load_handler,
    s3_object_created_event,
)


def make_queues(sqs: Any, *, visibility: int = 1, max_receive: int = 3) -> tuple[str, str, str]:
    """A queue with a DLQ redrive policy; returns (queue_url, queue_arn, dlq_url)."""
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="work",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn, dlq_url


def source(sqs: Any, url: str, arn: str, handler: str, **kw: Any) -> SqsEventSource:
    invoke = in_process_invoker(load_handler(f"lsvc_handlers.{handler}"), "TestFunction")
    return SqsEventSource(sqs, url, arn, invoke, **kw)


def bodies(sqs: Any, url: str) -> list[str]:
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return sorted(m["Body"] for m in got)


# --- handler lookup -------------------------------------------------------------------------


def test_load_handler_finds_function_by_handler_string() -> None:
    assert load_handler("lsvc_handlers.ok") is lsvc_handlers.ok


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("nodots", "not of the form"),
        ("no_such_module_xyz.handler", "cannot import module 'no_such_module_xyz'"),
        ("lsvc_handlers.missing", "has no callable 'missing'"),
        ("lsvc_handlers.NOT_CALLABLE", "has no callable 'NOT_CALLABLE'"),
    ],
)
def test_load_handler_errors_name_the_problem(handler: str, message: str) -> None:
    with pytest.raises(HandlerNotFoundError, match=message):
        load_handler(handler)


# --- context and events ---------------------------------------------------------------------


def test_context_has_the_runtime_attributes() -> None:
    ctx = LambdaContext(function_name="FanoutFunction", timeout_seconds=3, region="eu-west-1")
    assert ctx.invoked_function_arn == (
        "arn:aws:lambda:eu-west-1:123456789012:function:FanoutFunction"
    )
    assert ctx.log_group_name == "/aws/lambda/FanoutFunction"
    assert "[$LATEST]" in ctx.log_stream_name
    assert ctx.memory_limit_in_mb == 1024
    assert ctx.aws_request_id != LambdaContext(function_name="x").aws_request_id
    remaining = ctx.get_remaining_time_in_millis()
    assert 2000 < remaining <= 3000
    time.sleep(0.05)
    assert ctx.get_remaining_time_in_millis() < remaining


def test_s3_event_is_real_shaped_and_url_encodes_the_key() -> None:
    event = s3_object_created_event(
        "landing", "inbound/acme/orders/a b+c=1.csv", size=12, etag='"abc"', version_id="v1"
    )
    (record,) = event["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::landing"
    obj = record["s3"]["object"]
    assert obj["key"] == "inbound/acme/orders/a+b%2Bc%3D1.csv"
    assert unquote_plus(obj["key"]) == "inbound/acme/orders/a b+c=1.csv"
    assert (obj["size"], obj["eTag"], obj["versionId"]) == (12, "abc", "v1")
    assert record["eventTime"].endswith("Z")


# --- batch item failures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "report", "expected"),
    [
        (None, True, set()),
        ({"batchItemFailures": []}, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, True, {"a"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, False, set()),
        ({"batchItemFailures": [{"itemIdentifier": "zz"}]}, True, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, True, {"a", "b"}),
        ({"batchItemFailures": [{}]}, True, {"a", "b"}),
        ("not a dict", True, set()),
    ],
)
def test_failed_message_ids_follow_lambda_rules(
    response: Any, report: bool, expected: set[str]
) -> None:
    assert failed_message_ids(response, ["a", "b"], report_batch_item_failures=report) == expected


# --- SQS event source against moto (in-process and server mode) ------------------------------


def test_event_is_built_as_lambda_builds_it(sqs_client: Any) -> None:
    url, arn, _ = make_queues(sqs_client)
    sqs_client.send_message(
        QueueUrl=url,
        MessageBody='{"chunk": 1}',
        MessageAttributes={
            "feed": {"DataType": "String", "StringValue": "orders"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    lsvc_handlers.SEEN.clear()
    result = source(sqs_client, url, arn, "ok").poll_once()
    assert (result.received, result.succeeded, result.failed) == (1, 1, 0)
    (record,) = lsvc_handlers.SEEN[-1]["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1"
    assert record["body"] == '{"chunk": 1}'
    assert record["md5OfBody"] == hashlib.md5(b'{"chunk": 1}').hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert "SentTimestamp" in record["attributes"]
    assert record["messageAttributes"]["feed"] == {
        "stringValue": "orders",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert bodies(sqs_client, url) == []  # deleted


def test_only_reported_failures_stay_and_reach_the_dlq(sqs_client: Any) -> None:
    url, arn, dlq_url = make_queues(sqs_client, visibility=1, max_receive=3)
    for body in ("good-1", "poison", "good-2"):
        sqs_client.send_message(QueueUrl=url, MessageBody=body)
    lsvc_handlers.SEEN.clear()
    es = source(sqs_client, url, arn, "fail_poison")
    totals = es.drain(timeout=30, poll_interval=0.2)
    assert totals.succeeded == 2
    assert totals.failed == 3  # the poison message was delivered maxReceiveCount times
    counts = [
        r["attributes"]["ApproximateReceiveCount"]
        for e in lsvc_handlers.SEEN
        for r in e["Records"]
        if r["body"] == "poison"
    ]
    assert counts == ["1", "2", "3"]
    assert bodies(sqs_client, dlq_url) == ["poison"]
    assert es.queue_depth() == (0, 0)


def test_a_raising_handler_fails_the_whole_batch(sqs_client: Any) -> None:
    url, arn, dlq_url = make_queues(sqs_client, visibility=1, max_receive=2)
    for body in ("a", "b"):
        sqs_client.send_message(QueueUrl=url, MessageBody=body)
    es = source(sqs_client, url, arn, "boom")
    first = es.poll_once()
    assert (first.received, first.succeeded, first.failed) == (2, 0, 2)
    assert first.error == "RuntimeError: handler exploded"
    assert es.queue_depth() == (0, 2)  # in flight until the visibility timeout
    es.drain(timeout=30)
    assert bodies(sqs_client, dlq_url) == ["a", "b"]


def test_an_invalid_item_identifier_fails_the_whole_batch(sqs_client: Any) -> None:
    url, arn, _ = make_queues(sqs_client, visibility=30)
    for body in ("a", "b"):
        sqs_client.send_message(QueueUrl=url, MessageBody=body)
    result = source(sqs_client, url, arn, "bad_identifier").poll_once()
    assert (result.succeeded, result.failed) == (0, 2)


def test_without_report_batch_item_failures_a_response_means_success(sqs_client: Any) -> None:
    url, arn, _ = make_queues(sqs_client, visibility=30)
    sqs_client.send_message(QueueUrl=url, MessageBody="poison")
    es = source(sqs_client, url, arn, "fail_poison", report_batch_item_failures=False)
    result = es.poll_once()
    assert (result.succeeded, result.failed) == (1, 0)
    assert es.queue_depth() == (0, 0)


def test_batch_size_caps_each_invocation(sqs_client: Any) -> None:
    url, arn, _ = make_queues(sqs_client)
    for i in range(7):
        sqs_client.send_message(QueueUrl=url, MessageBody=str(i))
    lsvc_handlers.SEEN.clear()
    totals = source(sqs_client, url, arn, "ok", batch_size=3).drain(timeout=30)
    sizes = [len(e["Records"]) for e in lsvc_handlers.SEEN]
    assert totals.succeeded == 7
    assert sum(sizes) == 7
    assert max(sizes) <= 3


def test_drain_times_out_while_messages_are_in_flight(sqs_client: Any) -> None:
    url, arn, _ = make_queues(sqs_client, visibility=60)
    sqs_client.send_message(QueueUrl=url, MessageBody="poison")
    with pytest.raises(DrainTimeoutError, match="1 in flight"):
        source(sqs_client, url, arn, "fail_poison").drain(timeout=1)
