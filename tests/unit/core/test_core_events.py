"""Event parsing (S3 direct, SQS, SNS-in-SQS, EventBridge, Transfer), temp names, messages."""

from __future__ import annotations

import json

import pytest

from ingest.domain.events import LandedObject, landed_objects
from ingest.domain.messages import ChunkMessage
from ingest.errors import InvalidEventError
from ingest.usecases.fanout import held_by_role, is_temporary


def s3_record(key: str, *, event_name: str = "ObjectCreated:Put", **obj: object) -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:transfer-session"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": "landing", "arn": "arn:aws:s3:::landing"},
            "object": {"key": key, "size": 12, "eTag": "abc123", "versionId": "v1", **obj},
        },
    }


def test_s3_direct_notification_url_decodes_keys():
    event = {"Records": [s3_record("inbound/acme/orders/a+b%2Bc.csv")]}
    assert list(landed_objects(event)) == [
        LandedObject(
            bucket="landing",
            key="inbound/acme/orders/a b+c.csv",
            size=12,
            etag="abc123",
            version_id="v1",
            principal_id="AWS:AROAEXAMPLE:transfer-session",
        )
    ]


def test_s3_keys_with_escaped_unicode_and_quoted_etags():
    event = {"Records": [s3_record("inbound/acme/caf%C3%A9%20%281%29.csv", eTag='"q"')]}
    (obj,) = landed_objects(event)
    assert obj.key == "inbound/acme/café (1).csv"
    assert obj.etag == "q"


def test_non_create_records_and_s3_test_events_are_skipped():
    event = {"Records": [s3_record("a.csv", event_name="ObjectRemoved:Delete"), s3_record("b.csv")]}
    assert [o.key for o in landed_objects(event)] == ["b.csv"]
    assert list(landed_objects({"Event": "s3:TestEvent", "Bucket": "landing"})) == []
    wrapped = {"Records": [{"body": json.dumps({"Event": "s3:TestEvent"})}]}
    assert list(landed_objects(wrapped)) == []


def test_sqs_wrapped_notification():
    inner = {"Records": [s3_record("inbound/x%3Dy.csv"), s3_record("inbound/z.csv")]}
    event = {"Records": [{"messageId": "m1", "body": json.dumps(inner), "eventSource": "aws:sqs"}]}
    assert [o.key for o in landed_objects(event)] == ["inbound/x=y.csv", "inbound/z.csv"]


def test_sns_in_sqs_and_sns_direct():
    s3_event = {"Records": [s3_record("inbound/sns+file.csv")]}
    sns_envelope = {
        "Type": "Notification",
        "MessageId": "n1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:landed",
        "Message": json.dumps(s3_event),
    }
    sqs = {"Records": [{"messageId": "m1", "body": json.dumps(sns_envelope)}]}
    assert [o.key for o in landed_objects(sqs)] == ["inbound/sns file.csv"]
    sns = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(s3_event)}}]}
    assert [o.key for o in landed_objects(sns)] == ["inbound/sns file.csv"]


def eventbridge_object_created(key: str) -> dict:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-23T08:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::landing"],
        "detail": {
            "version": "0",
            "bucket": {"name": "landing"},
            "object": {"key": key, "size": 5, "etag": "e1", "version-id": "v9", "sequencer": "1"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def test_eventbridge_object_created_keys_are_not_url_decoded():
    (obj,) = landed_objects(eventbridge_object_created("inbound/a+b%2Bc.csv"))
    assert (obj.bucket, obj.key, obj.size, obj.etag, obj.version_id) == (
        "landing",
        "inbound/a+b%2Bc.csv",
        5,
        "e1",
        "v9",
    )
    assert not obj.upload_confirmed
    # and the same event delivered through SQS
    wrapped = {"Records": [{"body": json.dumps(eventbridge_object_created("inbound/q.csv"))}]}
    assert [o.key for o in landed_objects(wrapped)] == ["inbound/q.csv"]


def transfer_upload_completed(path: str) -> dict:
    return {
        "version": "0",
        "id": "5a7ff3d4-d1e1-4a0c-9f7b-0e3c4f1d2a3b",
        "detail-type": "SFTP Server File Upload Completed",
        "source": "aws.transfer",
        "account": "123456789012",
        "time": "2026-11-23T08:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:transfer:us-east-1:123456789012:server/s-1234567890abcdef0"],
        "detail": {
            "failure-code": None,
            "status-code": "COMPLETED",
            "end-timestamp": "2026-11-23T08:00:00.1Z",
            "start-timestamp": "2026-11-23T07:59:59.9Z",
            "source-ip": "127.0.0.1",
            "server-id": "s-1234567890abcdef0",
            "username": "acme",
            "session-id": "d9f3c1b2a1e0f0e0",
            "file-path": path,
            "bytes": 2048,
            "etag": '"f00d"',
        },
    }


def test_transfer_upload_completed_confirms_the_upload():
    (obj,) = landed_objects(transfer_upload_completed("/landing/inbound/acme/orders/o 1.csv"))
    assert obj == LandedObject(
        bucket="landing",
        key="inbound/acme/orders/o 1.csv",
        size=2048,
        etag="f00d",
        upload_confirmed=True,
    )


def test_transfer_event_without_a_key_is_invalid():
    with pytest.raises(InvalidEventError, match="file-path"):
        list(landed_objects(transfer_upload_completed("/landing")))


def test_unrelated_eventbridge_events_announce_nothing():
    event = {**eventbridge_object_created("k"), "detail-type": "Object Deleted"}
    assert list(landed_objects(event)) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"foo": 1}, "not an S3, SQS or EventBridge event"),
        ({"Records": [{"weird": 1}]}, "unrecognised record"),
        ({"Records": [{"body": "not json"}]}, "envelope body is not JSON"),
        ({"Records": [{"body": "[1]"}]}, "not a JSON object"),
        ({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]}, "S3 record"),
        ({"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}}, "Object Created"),
    ],
)
def test_malformed_events_raise_invalid_event(event, message):
    with pytest.raises(InvalidEventError, match=message):
        list(landed_objects(event))


@pytest.mark.parametrize(
    "key",
    [
        "inbound/acme/orders/o.csv.part",
        "inbound/acme/orders/o.csv.filepart",
        "inbound/acme/orders/o.tmp",
        "inbound/acme/orders/.~lock.o.csv#",
        "inbound/acme/orders/~$o.xlsx",
        "inbound/acme/orders/.o.csv.swp",
        "inbound/acme/orders/",
        "inbound/",
    ],
)
def test_temp_and_marker_names_are_temporary(key):
    assert is_temporary(key, 0)


@pytest.mark.parametrize(
    "key", ["inbound/acme/orders/o.csv", "inbound/acme/orders/part.csv", "inbound/a.partial.csv"]
)
def test_ordinary_names_are_not_temporary(key):
    assert not is_temporary(key, 10)


def test_held_by_role_matches_the_roles_sessions_only():
    held = held_by_role("AROAEXAMPLE")
    assert held(LandedObject("b", "k", principal_id="AWS:AROAEXAMPLE:transfer-session"))
    assert not held(LandedObject("b", "k", principal_id="AWS:AROAOTHER:x"))
    assert not held(LandedObject("b", "k", principal_id="AWS:AROAEXAMPLEX:x"))
    assert not held(LandedObject("b", "k"))
    assert not held_by_role(None)(LandedObject("b", "k", principal_id="AWS:AROAEXAMPLE:x"))


def message(**overrides: object) -> str:
    body = {
        "v": 1,
        "bucket": "b",
        "key": "k",
        "version": "v1",
        "version_id": "v1",
        "feed": "f",
        "index": 0,
        "chunks": 2,
        "start": 0,
        "end": 10,
        "first_line": 1,
        "compressed": False,
        **overrides,
    }
    return json.dumps(body)


def test_chunk_message_round_trip():
    msg = ChunkMessage.from_json(message(ingestion="0f1e2d3c4b5a6978"))
    assert ChunkMessage.from_json(json.dumps(msg.to_body())) == msg
    assert msg.source_uri == "s3://b/k"
    assert msg.ingestion_id == "0f1e2d3c4b5a6978"


def test_a_chunk_message_from_before_ingestion_ids_is_still_read():
    """Messages queued by the previous release lack ``ingestion``; they are still valid."""
    msg = ChunkMessage.from_json(message())
    assert (msg.ingestion, msg.ingestion_id) == ("", None)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("{", "not JSON"),
        (message(v=2), "schema v1"),
        (json.dumps({"v": 1, "bucket": "b"}), "lacks"),
        (message(start=11), "impossible range"),
        (message(index=2), "impossible range"),
        (message(first_line=0), "impossible range"),
    ],
)
def test_malformed_chunk_messages_are_invalid(body, text):
    with pytest.raises(InvalidEventError, match=text):
        ChunkMessage.from_json(body)
