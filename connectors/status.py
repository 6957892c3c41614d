"""Transfer status: the per-file record, its store, and its CloudWatch / EventBridge events.

Each file of a transfer goes ``QUEUED → IN_PROGRESS → COMPLETED | FAILED``. The record uses
AWS's connector log field names (a contract: docs/contracts.md). Its final state is

* kept in the ledger table (``pk = TRANSFER#<transfer-id>``, ``sk = FILE#<file-path>``) for
  ``list_file_transfer_results``; a completed retrieve also links the landed object to it
  (``pk = FILE#<key>``, ``sk = SOURCE#<transfer-id>``), for ``ingest status KEY``;
* written as one JSON event to CloudWatch Logs group ``/aws/transfer/<connector-id>``;
* sent to EventBridge as ``SFTP Connector File Retrieve|Send Completed|Failed``.

AWS reserves ``aws.*`` event sources for itself, so our engine's events carry
``EVENT_SOURCE``; the template's rule matches both that and ``aws.transfer``
(:data:`ingest.domain.events.TRANSFER_EVENT_SOURCE`). Logs and events go out through
the one publisher, :class:`ingest.adapters.publisher.Publisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct, field

from ingest.adapters.dynamo import attr, from_item
from ingest.adapters.ledger_items import file_pk, source_sk
from ingest.adapters.publisher import Event, Publisher, iso_now
from ingest.adapters.sdk import is_condition_failure, unavailable
from ingest.errors import IngestError, StorageUnavailableError
from ingest.shared.aio import Bridge

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_logs.client import CloudWatchLogsClient

log = logging.getLogger(__name__)

EVENT_SOURCE = "sftp-ingest.connectors"
TRANSFER_PK = "TRANSFER#"

#: every field of a final file record (failure-* only on FAILED), for tests and docs.
LOG_FIELDS = (
    "operation",
    "timestamp",
    "connector-id",
    "connector-arn",
    "account-id",
    "transfer-id",
    "file-transfer-id",
    "url",
    "file-path",
    "status-code",
    "start-time",
    "end-time",
    "bytes",
)
FAILURE_FIELDS = ("failure-code", "failure-message")


class FileTransferStatus(StrEnum):
    """AWS's ``StatusCode`` values."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class FileRecord(Struct):
    """One file of one transfer."""

    operation: str  # RETRIEVE | SEND
    connector_id: str
    connector_arn: str
    account_id: str
    transfer_id: str
    url: str
    file_path: str
    directory_field: str  # local-directory-path (retrieve) | remote-directory-path (send)
    directory: str
    file_transfer_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: FileTransferStatus = FileTransferStatus.QUEUED
    failure_code: str | None = None
    failure_message: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    bytes: int = 0
    bucket: str | None = None
    key: str | None = None
    #: position in the request (results are listed in request order)
    index: int = 0

    def log_event(self) -> dict[str, Any]:
        """The CloudWatch Logs JSON event (AWS's connector log fields)."""
        event: dict[str, Any] = {
            "operation": self.operation,
            "timestamp": self.end_time or iso_now(),
            "connector-id": self.connector_id,
            "connector-arn": self.connector_arn,
            "account-id": self.account_id,
            "transfer-id": self.transfer_id,
            "file-transfer-id": self.file_transfer_id,
            "url": self.url,
            "file-path": self.file_path,
            "status-code": self.status.value,
            "start-time": self.start_time,
            "end-time": self.end_time,
            "bytes": self.bytes,
            self.directory_field: self.directory,
        }
        if self.status is FileTransferStatus.FAILED:
            event["failure-code"] = self.failure_code
            event["failure-message"] = self.failure_message
        return event

    def event_detail(self) -> dict[str, Any]:
        """The EventBridge ``detail`` (AWS's SFTP connector event fields)."""
        detail: dict[str, Any] = {
            "operation": self.operation,
            "connector-id": self.connector_id,
            "transfer-id": self.transfer_id,
            "file-transfer-id": self.file_transfer_id,
            "url": self.url,
            "file-path": self.file_path,
            "status-code": self.status.value,
            "start-timestamp": self.start_time,
            "end-timestamp": self.end_time,
            self.directory_field: self.directory,
            "bytes": self.bytes,
        }
        if self.bucket and self.key:
            detail["local-file-location"] = {"domain": "S3", "bucket": self.bucket, "key": self.key}
        if self.status is FileTransferStatus.FAILED:
            detail["failure-code"] = self.failure_code
            detail["failure-message"] = self.failure_message
        return detail

    def detail_type(self) -> str:
        """``SFTP Connector File Retrieve|Send Completed|Failed``."""
        verb = "Retrieve" if self.operation == "RETRIEVE" else "Send"
        outcome = "Completed" if self.status is FileTransferStatus.COMPLETED else "Failed"
        return f"SFTP Connector File {verb} {outcome}"

    def result(self) -> dict[str, str]:
        """One ``ConnectorFileTransferResult`` (ListFileTransferResults)."""
        out = {"FilePath": self.file_path, "StatusCode": self.status.value}
        if self.failure_code:
            out["FailureCode"] = self.failure_code
        if self.failure_message:
            out["FailureMessage"] = self.failure_message
        return out


class StatusStore:
    """Transfer results in the ledger table, under ``TRANSFER#<transfer-id>``."""

    def __init__(self, client: DynamoDBClient, table: str, *, ttl_days: int = 7) -> None:
        self._db = client
        self._table = table
        # AWS keeps results for 7 days; the item says when it may be dropped.
        self._ttl = ttl_days * 86400

    def save(self, record: FileRecord) -> None:
        """Write a file's current status. A final status is never overwritten by an earlier one."""
        item = self._item(record, record.index)
        values = {
            ":done": attr(FileTransferStatus.COMPLETED.value),
            ":failed": attr(FileTransferStatus.FAILED.value),
        }
        condition = "attribute_not_exists(pk) OR NOT (#s IN (:done, :failed))"
        if record.status in (FileTransferStatus.COMPLETED, FileTransferStatus.FAILED):
            # a final status may replace another final one, but never a COMPLETED
            condition = "attribute_not_exists(pk) OR #s <> :done"
            del values[":failed"]
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as exc:
            if is_condition_failure(exc):
                return  # a later state was already recorded (events may arrive out of order)
            raise unavailable(exc, "dynamodb", "PutItem") from exc
        source = self.source_item(record)
        if source is not None:
            try:
                self._db.put_item(TableName=self._table, Item=source)
            except (ClientError, BotoCoreError) as exc:
                raise unavailable(exc, "dynamodb", "PutItem") from exc

    def source_item(self, record: FileRecord) -> dict[str, Any] | None:
        """The landed object's link to a completed retrieve (``FILE#<key>`` /
        ``SOURCE#<transfer-id>``), or None for other records. Written again by whoever
        stores the final status (the engine, the status function): the same item each time."""
        if not (
            record.operation == "RETRIEVE"
            and record.status is FileTransferStatus.COMPLETED
            and record.bucket
            and record.key
        ):
            return None
        item = {
            "pk": attr(file_pk(record.key)),
            "sk": attr(source_sk(record.transfer_id)),
            "connector_id": attr(record.connector_id),
            "transfer_id": attr(record.transfer_id),
            "file_transfer_id": attr(record.file_transfer_id),
            "url": attr(record.url),
            "remote_path": attr(record.file_path),
            "bucket": attr(record.bucket),
            "bytes": attr(record.bytes),
            "expires_at": attr(int(time.time()) + self._ttl),
        }
        if record.end_time:
            item["completed_at"] = attr(record.end_time)
        return item

    def _item(self, record: FileRecord, index: int | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": attr(f"{TRANSFER_PK}{record.transfer_id}"),
            "sk": attr(f"FILE#{record.file_path}"),
            "connector_id": attr(record.connector_id),
            "operation": attr(record.operation),
            "file_path": attr(record.file_path),
            "file_transfer_id": attr(record.file_transfer_id),
            "status": attr(record.status.value),
            "bytes": attr(record.bytes),
            "expires_at": attr(int(time.time()) + self._ttl),
        }
        if index is not None:
            item["idx"] = attr(index)
        for name, value in (
            ("failure_code", record.failure_code),
            ("failure_message", record.failure_message),
            ("start_time", record.start_time),
            ("end_time", record.end_time),
        ):
            if value:
                item[name] = attr(value[:2000])
        return item

    def save_many(self, records: list[FileRecord]) -> None:
        """Write several records of one transfer in batches (the engine is their only writer
        while the transfer runs, so no condition is needed)."""
        items = [{"PutRequest": {"Item": self._item(r, r.index)}} for r in records]
        links = (self.source_item(r) for r in records)
        items += [{"PutRequest": {"Item": link}} for link in links if link is not None]
        for start in range(0, len(items), 25):
            pending: Any = {self._table: items[start : start + 25]}
            try:
                while pending:
                    resp = self._db.batch_write_item(RequestItems=pending)
                    pending = resp.get("UnprocessedItems") or None
            except ClientError as exc:
                raise StorageUnavailableError("dynamodb", "BatchWriteItem", str(exc)) from exc

    def results(self, connector_id: str, transfer_id: str) -> list[dict[str, str]] | None:
        """``FileTransferResults`` in request order, or None if the transfer is unknown."""
        try:
            paginator = self._db.get_paginator("query")
            items = [
                item
                for page in paginator.paginate(
                    TableName=self._table,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={":pk": attr(f"{TRANSFER_PK}{transfer_id}")},
                    ConsistentRead=True,
                )
                for item in page.get("Items", [])
            ]
        except ClientError as exc:
            raise StorageUnavailableError("dynamodb", "Query", str(exc)) from exc
        records = [from_item(i) for i in items]
        records = [r for r in records if r["connector_id"] == connector_id]
        if not records:
            return None
        records.sort(key=lambda r: int(r.get("idx", 1 << 30)))
        out: list[dict[str, str]] = []
        for r in records:
            entry = {"FilePath": r["file_path"], "StatusCode": r["status"]}
            if "failure_code" in r:
                entry["FailureCode"] = r["failure_code"]
            if "failure_message" in r:
                entry["FailureMessage"] = r["failure_message"]
            out.append(entry)
        return out


class StatusPublisher:
    """Final file records → CloudWatch Logs and EventBridge, as the managed service does."""

    def __init__(
        self,
        logs: CloudWatchLogsClient,
        events: EventBridgeClient,
        *,
        source: str = EVENT_SOURCE,
        event_bus: str = "default",
        retention_days: int | None = None,
    ) -> None:
        self._publisher = Publisher(
            logs, events, source=source, event_bus=event_bus, retention_days=retention_days
        )

    def publish(self, record: FileRecord) -> None:
        """Log one final record and send its event."""
        self.publish_many([record])

    def publish_many(self, records: list[FileRecord]) -> None:
        """Log final records of one connector (one JSON event each) and send their events.

        One ``PutLogEvents`` and one ``PutEvents`` per 10 files keep a call of ten small
        files from costing twenty requests.
        """
        if not records:
            return
        connector_id = records[0].connector_id
        now = int(time.time() * 1000)
        self._publisher.put_logs(
            f"/aws/transfer/{connector_id}",
            connector_id,
            [
                {"timestamp": now, "message": json.dumps(r.log_event(), sort_keys=True)}
                for r in records
            ],
        )
        self._publisher.put_events(
            [Event(r.detail_type(), r.event_detail(), r.connector_arn) for r in records]
        )

    def publish_event(self, detail_type: str, detail: dict[str, Any], resource: str) -> None:
        """One EventBridge event of ours (a directory listing's outcome)."""
        self._publisher.put_events([Event(detail_type, detail, resource)])


class StatusFlusher:
    """Stores the QUEUED / IN_PROGRESS states of a running transfer, in batches.

    Every ``interval`` seconds the records whose state changed are written in one batch;
    final states are written by the caller once all files are done. A file that completes
    within ``interval`` costs one write instead of three, and a long one shows its state
    within ``interval`` seconds. States in the store only ever move forward.
    """

    def __init__(
        self,
        store: StatusStore,
        records: list[FileRecord],
        *,
        bridge: Bridge,
        interval: float = 0.25,
    ) -> None:
        self.store = store
        self._bridge = bridge
        self.records = records
        self.interval = interval
        self.changed = asyncio.Event()
        self.changed.set()  # QUEUED is a state too
        self.stop = asyncio.Event()
        self._written: dict[int, FileTransferStatus] = {}

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.interval)
            if self.stop.is_set():
                return  # the caller writes the final states now
            await self.changed.wait()
            self.changed.clear()
            due = [
                r
                for r in self.records
                if r.status in (FileTransferStatus.QUEUED, FileTransferStatus.IN_PROGRESS)
                and self._written.get(r.index) is not r.status
            ]
            if due:
                self._written.update({r.index: r.status for r in due})
                try:
                    await self._bridge.run(self.store.save_many, due)
                except IngestError:
                    log.exception("could not record the running states of a transfer")

    def __repr__(self) -> str:
        return f"StatusFlusher({len(self.records)} files)"
