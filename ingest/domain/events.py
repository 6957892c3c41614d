"""Normalise the events that announce a landed object into ``LandedObject`` values.

The envelopes are read with Powertools' event data classes (``S3EventRecord``,
``SQSRecord``, ``SNSEventRecord``, ``S3EventBridgeNotificationEvent``); Transfer Family's
events have none, and are read here by their documented fields.

Accepted shapes:
* an S3 notification (``Records[].s3``), as S3 invokes the function directly;
* the same notification wrapped in SQS (``Records[].body``), optionally inside SNS;
* an EventBridge ``Object Created`` event from S3 (``detail.bucket.name``, ``detail.object``);
* Transfer Family's ``SFTP Server File Upload Completed`` event (``detail.file-path`` is
  ``/<bucket>/<key>``, ``detail.bytes``, ``detail.etag``), which confirms a held SFTP upload.
S3 notification keys are URL-encoded (spaces as ``+``); EventBridge keys are not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes.s3_event import (
    S3EventBridgeNotificationEvent,
    S3EventRecord,
)
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSEventRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from msgspec import Struct

from ingest.errors import InvalidEventError
from ingest.shared.uris import parse_bucket_path

TRANSFER_UPLOAD_COMPLETED = "SFTP Server File Upload Completed"
TRANSFER_UPLOAD_FAILED = "SFTP Server File Upload Failed"
TRANSFER_RENAME_COMPLETED = "SFTP Server File Rename Completed"
TRANSFER_RENAME_FAILED = "SFTP Server File Rename Failed"
#: the ``source`` of every Transfer Family event (and of the local gateway's)
TRANSFER_EVENT_SOURCE = "aws.transfer"


class ObjectInfo(Struct, frozen=True):
    """What S3 says about one version of an object."""

    size: int
    etag: str
    version_id: str | None


class LandedObject(Struct, frozen=True):
    """An object that appeared in the landing bucket."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    principal_id: str | None = None
    #: True when the event itself confirms that an SFTP upload completed.
    upload_confirmed: bool = False


def landed_objects(event: Mapping[str, Any]) -> Iterator[LandedObject]:
    """Every landed object an event announces (test events and unrelated records skipped)."""
    if "detail-type" in event:
        yield from _from_eventbridge(event)
        return
    records = event.get("Records")
    if not isinstance(records, list):
        if event.get("Event") == "s3:TestEvent":
            return
        raise InvalidEventError(f"not an S3, SQS or EventBridge event: keys {sorted(event)}")
    for record in records:
        if "s3" in record:
            s3_record = S3EventRecord(record)
            if s3_record.event_name.startswith("ObjectCreated"):
                yield _from_s3_record(s3_record)
        elif "body" in record:
            yield from landed_objects(_json(SQSRecord(record).body))
        elif "Sns" in record:
            yield from landed_objects(_json(SNSEventRecord(record).sns.message))
        else:
            raise InvalidEventError(f"unrecognised record: keys {sorted(record)}")


def _json(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise InvalidEventError(f"envelope body is not JSON: {exc}") from exc
    if not isinstance(value, Mapping):
        raise InvalidEventError("envelope body is not a JSON object")
    if "Type" in value and "Message" in value and "Records" not in value:  # SNS in SQS
        return _json(value["Message"])
    return value


def _from_s3_record(record: S3EventRecord) -> LandedObject:
    try:
        obj = record.s3.get_object
        return LandedObject(
            bucket=record.s3.bucket.name,
            key=unquote_plus(obj.key),  # S3 notifications URL-encode keys (spaces as +)
            size=obj.raw_event.get("size"),
            etag=(obj.raw_event.get("eTag") or obj.raw_event.get("etag") or "").strip('"') or None,
            version_id=obj.version_id,
            principal_id=(record.get("userIdentity") or {}).get("principalId"),
        )
    except (KeyError, TypeError) as exc:
        raise InvalidEventError(f"S3 record without {exc}") from exc


def _from_eventbridge(event: Mapping[str, Any]) -> Iterator[LandedObject]:
    detail = event.get("detail") or {}
    kind = event["detail-type"]
    try:
        if kind == "Object Created":
            created = S3EventBridgeNotificationEvent(dict(event)).detail
            yield LandedObject(
                bucket=created.bucket.name,
                key=created.object.raw_event["key"],  # not URL-encoded, unlike S3's own
                size=created.object.raw_event.get("size"),
                etag=created.object.raw_event.get("etag"),
                version_id=created.object.raw_event.get("version-id"),
                principal_id=created.raw_event.get("requester"),
            )
        elif kind == TRANSFER_UPLOAD_COMPLETED:
            bucket, key = transfer_path(detail, "file-path")
            size = detail.get("bytes")
            yield LandedObject(
                bucket=bucket,
                key=key,
                size=int(size) if size is not None else None,
                etag=(detail.get("etag") or "").strip('"') or None,
                upload_confirmed=True,
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidEventError(f"{kind} event without {exc}") from exc


def transfer_path(detail: Mapping[str, Any], field: str) -> tuple[str, str]:
    """``(bucket, key)`` of a Transfer event's path field: ``/<bucket>/<key>`` on an S3-domain
    server."""
    value = detail.get(field)
    if not isinstance(value, str):
        raise InvalidEventError(f"Transfer event without {field}")
    try:
        where = parse_bucket_path(value)
    except ValueError as exc:
        raise InvalidEventError(f"{field}: {exc}") from None
    return where.bucket, where.key
