"""UploadEventsFunction under moto: held Transfer uploads are released by the completed
event, and a failed upload ends as PARTIAL and is never processed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from support_aws import fake_aws_env

from ingest.adapters.feeds_publisher import publish_feeds
from ingest.adapters.ledger import Ledger
from ingest.domain.files import HELD_REASON, FileStatus
from ingest.errors import InvalidEventError
from ingest_local.lambda_service import LambdaContext, s3_object_created_event
from ingest_local.tables import create_pk_sk_table

REGION = "us-east-1"
BUCKET = "ue-landing-123456789012"
ROLE_ID = "AROAEXAMPLETRANSFER1"
SERVER_ID = "s-0123456789abcdef0"
FEEDS = """
feeds:
  - name: orders
    match: "inbound/{partner}/orders/*.csv"
    format: csv
    csv: {delimiter: ",", header: true}
    key: {pk: "ORDER#{order_id}", sk: "PARTNER#{partner}"}
    fields:
      order_id: {type: string, required: true}
      amount: {type: decimal, required: true}
"""
CSV = b"order_id,amount\n" + b"".join(b"o%d,%d.5\n" % (i, i) for i in range(50))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    fake_aws_env(monkeypatch, REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        publish_feeds(s3, f"s3://{BUCKET}/config/feeds.yaml", FEEDS)
        queue_url = sqs.create_queue(QueueName="ingest")["QueueUrl"]
        create_pk_sk_table(ddb, "ledger")
        for name, value in {
            "LANDING_BUCKET": BUCKET,
            "LEDGER_TABLE": "ledger",
            "INGEST_QUEUE_URL": queue_url,
            "FEEDS_URI": f"s3://{BUCKET}/config/feeds.yaml",
            "CHUNK_SIZE_MIB": "64",
            "TRANSFER_ROLE_ID": ROLE_ID,
        }.items():
            monkeypatch.setenv(name, value)
        from lambdas import fanout, upload_events

        fanout.wiring.reset()
        upload_events.wiring.reset()
        yield {"s3": s3, "sqs": sqs, "ddb": ddb, "queue_url": queue_url}
        fanout.wiring.reset()
        upload_events.wiring.reset()


def transfer_event(kind: str, key: str, **detail: Any) -> dict[str, Any]:
    """An EventBridge event as Transfer Family sends it (and the local gateway emits it)."""
    return {
        "version": "0",
        "id": "6b5f1a4e-0000-4000-8000-000000000000",
        "detail-type": f"SFTP Server File Upload {kind}",
        "source": "aws.transfer",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:transfer:{REGION}:123456789012:server/{SERVER_ID}"],
        "detail": {
            "status-code": "COMPLETED" if kind == "Completed" else "FAILED",
            "protocol": "SFTP",
            "file-path": f"/{BUCKET}/{key}",
            "server-id": SERVER_ID,
            "username": "acme",
            "session-id": "9ca9a0e1cec6ad9d",
            "client-ip": "192.0.2.10",
            "start-timestamp": "2026-01-01T00:00:00.000000Z",
            "end-timestamp": "2026-01-01T00:00:01.000000Z",
            **detail,
        },
    }


def land_as_transfer_user(aws: dict[str, Any], key: str, body: bytes) -> dict[str, Any]:
    from lambdas import fanout

    resp = aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=body)
    event = s3_object_created_event(
        BUCKET,
        key,
        size=len(body),
        etag=resp["ETag"],
        principal_id=f"AWS:{ROLE_ID}:acme-session",
        region=REGION,
    )
    fanout.handler(event, LambdaContext(function_name="FanoutFunction"))
    return resp


def queued(aws: dict[str, Any]) -> list[dict[str, Any]]:
    msgs = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in msgs.get("Messages", [])]


def test_completed_event_releases_a_held_upload(aws: dict[str, Any]) -> None:
    from lambdas import upload_events

    key = "inbound/acme/orders/day1.csv"
    resp = land_as_transfer_user(aws, key, CSV)
    ledger = Ledger(aws["ddb"], "ledger")
    held = ledger.get_file(key)
    assert held is not None
    assert (held.status, held.reason) == (FileStatus.RECEIVED, HELD_REASON)
    assert queued(aws) == []

    event = transfer_event("Completed", key, bytes=len(CSV), etag=resp["ETag"].strip('"'))
    result = upload_events.handler(event, LambdaContext(function_name="UploadEventsFunction"))
    assert [f["outcome"] for f in result["files"]] == ["QUEUED"]
    entry = ledger.get_file(key)
    assert entry is not None
    assert entry.status == FileStatus.QUEUED
    assert entry.chunks == 1
    assert len(queued(aws)) == 1

    # EventBridge delivers at least once: the same event again queues nothing more
    again = upload_events.handler(event, LambdaContext(function_name="UploadEventsFunction"))
    assert [f["outcome"] for f in again["files"]] == ["DUPLICATE"]
    assert queued(aws) == []


def test_failed_event_marks_partial_and_nothing_is_queued(aws: dict[str, Any]) -> None:
    from lambdas import upload_events

    key = "inbound/acme/orders/cut-off.csv"
    land_as_transfer_user(aws, key, CSV[:100])
    event = transfer_event(
        "Failed",
        key,
        bytes=100,
        **{"failure-code": "PARTIAL_UPLOAD", "failure-message": "connection reset by peer"},
    )
    result = upload_events.handler(event, LambdaContext(function_name="UploadEventsFunction"))
    assert result["files"] == [{"key": key, "outcome": "PARTIAL"}]
    entry = Ledger(aws["ddb"], "ledger").get_file(key)
    assert entry is not None
    assert entry.status == FileStatus.PARTIAL
    assert entry.reason == "PARTIAL_UPLOAD: connection reset by peer"
    assert entry.size == 100
    assert queued(aws) == []


def test_objects_not_written_by_transfer_are_not_held(aws: dict[str, Any]) -> None:
    from lambdas import fanout

    key = "inbound/acme/orders/direct.csv"
    resp = aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=CSV)
    event = s3_object_created_event(BUCKET, key, size=len(CSV), etag=resp["ETag"], region=REGION)
    fanout.handler(event, LambdaContext(function_name="FanoutFunction"))
    entry = Ledger(aws["ddb"], "ledger").get_file(key)
    assert entry is not None
    assert entry.status == FileStatus.QUEUED


@pytest.mark.parametrize(
    "event",
    [
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {}},
        {
            "source": "aws.transfer",
            "detail-type": "SFTP Server File Download Completed",
            "detail": {},
        },
        {
            "source": "aws.transfer",
            "detail-type": "SFTP Server File Upload Failed",
            "detail": {"file-path": "/bucket-only"},
        },
        {"source": "aws.transfer", "detail-type": "SFTP Server File Upload Failed", "detail": {}},
    ],
)
def test_other_events_are_refused_clearly(aws: dict[str, Any], event: dict[str, Any]) -> None:
    from lambdas import upload_events

    with pytest.raises(InvalidEventError):
        upload_events.handler(event, LambdaContext(function_name="UploadEventsFunction"))


def release(aws: dict[str, Any], key: str, resp: dict[str, Any]) -> dict[str, Any]:
    """Transfer's Upload Completed event for an object landed as a Transfer user."""
    from lambdas import upload_events

    event = transfer_event("Completed", key, bytes=len(CSV), etag=resp["ETag"].strip('"'))
    return upload_events.handler(event, LambdaContext(function_name="UploadEventsFunction"))


def upload_failed(aws: dict[str, Any], key: str, size: int) -> dict[str, Any]:
    from lambdas import upload_events

    event = transfer_event(
        "Failed",
        key,
        bytes=size,
        **{"failure-code": "PARTIAL_UPLOAD", "failure-message": "connection reset by peer"},
    )
    return upload_events.handler(event, LambdaContext(function_name="UploadEventsFunction"))


def test_a_failed_reupload_that_left_the_object_in_place_keeps_the_entry(
    aws: dict[str, Any],
) -> None:
    """A server that discards cut-off uploads (our gateway) leaves the complete object in S3:
    the entry and its counters stay; the failure is noted beside them."""
    key = "inbound/acme/orders/victim.csv"
    resp = land_as_transfer_user(aws, key, CSV)
    release(aws, key, resp)
    ledger = Ledger(aws["ddb"], "ledger")
    before = ledger.get_file(key)
    assert before is not None and before.status == FileStatus.QUEUED

    result = upload_failed(aws, key, 20)
    assert result["files"] == [{"key": key, "outcome": "FAILED_UPLOAD_NOTED"}]
    after = ledger.get_file(key)
    assert after is not None
    assert (after.status, after.version, after.ingestion, after.chunks) == (
        before.status,
        before.version,
        before.ingestion,
        before.chunks,
    )
    assert after.failed_upload is not None
    assert after.failed_upload["reason"] == "PARTIAL_UPLOAD: connection reset by peer"
    assert after.failed_upload["bytes"] == 20


def test_a_failed_upload_whose_s3_event_comes_late_is_partial_and_stays_so(
    aws: dict[str, Any],
) -> None:
    """Transfer leaves the partial object in S3; its Upload Failed event may reach us before
    its S3 event. The entry becomes PARTIAL for that object, and the late S3 event cannot
    hold (or queue) it again."""
    from lambdas import fanout

    key = "inbound/acme/orders/raced.csv"
    good = land_as_transfer_user(aws, key, CSV)
    release(aws, key, good)
    partial = aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=CSV[:100])  # Transfer's write
    assert upload_failed(aws, key, 100)["files"][0]["outcome"] == "PARTIAL"
    entry = Ledger(aws["ddb"], "ledger").get_file(key)
    assert entry is not None
    assert (entry.status, entry.version) == (FileStatus.PARTIAL, partial["ETag"].strip('"'))
    late = s3_object_created_event(
        BUCKET,
        key,
        size=100,
        etag=partial["ETag"],
        principal_id=f"AWS:{ROLE_ID}:acme-session",
        region=REGION,
    )
    result = fanout.handler(late, LambdaContext(function_name="FanoutFunction"))
    assert [f["outcome"] for f in result["files"]] == ["DUPLICATE"]
    assert Ledger(aws["ddb"], "ledger").get_file(key).status == FileStatus.PARTIAL  # type: ignore[union-attr]


def rename_event(original: str, renamed: str) -> dict[str, Any]:
    """Transfer's ``SFTP Server File Rename Completed`` event, with its documented fields."""
    event = transfer_event("Completed", renamed)
    detail = {k: v for k, v in event["detail"].items() if k != "file-path"}
    return {
        **event,
        "detail-type": "SFTP Server File Rename Completed",
        "detail": {
            **detail,
            "original-file-path": f"/{BUCKET}/{original}",
            "renamed-file-path": f"/{BUCKET}/{renamed}",
        },
    }


def copy_as_transfer_user(aws: dict[str, Any], source: str, key: str) -> None:
    """What Transfer does for a rename: CopyObject (by the users' role), then DeleteObject;
    S3 announces the copy like any object the role wrote."""
    from lambdas import fanout

    aws["s3"].copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": source})
    aws["s3"].delete_object(Bucket=BUCKET, Key=source)
    head = aws["s3"].head_object(Bucket=BUCKET, Key=key)
    event = s3_object_created_event(
        BUCKET,
        key,
        size=head["ContentLength"],
        etag=head["ETag"],
        principal_id=f"AWS:{ROLE_ID}:acme-session",
        region=REGION,
    )
    event["Records"][0]["eventName"] = "ObjectCreated:Copy"
    fanout.handler(event, LambdaContext(function_name="FanoutFunction"))


@pytest.mark.parametrize("s3_event_first", [True, False])
def test_upload_then_rename_releases_the_renamed_file(
    aws: dict[str, Any], s3_event_first: bool
) -> None:
    """WinSCP and FileZilla upload ``name.filepart`` and rename it when done. Transfer emits
    no upload event for the renamed object, only Rename Completed: that must release it."""
    from lambdas import upload_events

    part = "inbound/acme/orders/day2.csv.filepart"
    key = "inbound/acme/orders/day2.csv"
    resp = land_as_transfer_user(aws, part, CSV)
    release(aws, part, resp)  # the temp name itself is ignored
    context = LambdaContext(function_name="UploadEventsFunction")
    if s3_event_first:
        copy_as_transfer_user(aws, part, key)
        held = Ledger(aws["ddb"], "ledger").get_file(key)
        assert held is not None and held.held
    else:
        aws["s3"].copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": part})
    result = upload_events.handler(rename_event(part, key), context)
    assert [f["outcome"] for f in result["files"]] == ["QUEUED"]
    assert result["files"][0]["renamed_from"] == part
    if not s3_event_first:
        copy_as_transfer_user(aws, part, key)  # the late S3 event changes nothing
    entry = Ledger(aws["ddb"], "ledger").get_file(key)
    assert entry is not None and entry.status == FileStatus.QUEUED
    assert len(queued(aws)) == 1


def test_a_rename_of_a_partial_upload_is_partial(aws: dict[str, Any]) -> None:
    from lambdas import upload_events

    part = "inbound/acme/orders/day3.csv.filepart"
    key = "inbound/acme/orders/day3.csv"
    land_as_transfer_user(aws, part, CSV[:50])
    upload_failed(aws, part, 50)
    copy_as_transfer_user(aws, part, key)
    result = upload_events.handler(
        rename_event(part, key), LambdaContext(function_name="UploadEventsFunction")
    )
    assert [f["outcome"] for f in result["files"]] == ["PARTIAL"]
    entry = Ledger(aws["ddb"], "ledger").get_file(key)
    assert entry is not None and entry.status == FileStatus.PARTIAL
    assert f"renamed from {part}" in (entry.reason or "")
    assert queued(aws) == []
