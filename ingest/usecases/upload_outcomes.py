"""Transfer Family upload outcomes: release held uploads, record failed ones, follow renames.

Transfer Family writes an upload to S3 as it arrives, so the S3 event also fires for a
transfer that is later cut off. The fanout therefore *holds* objects written by the Transfer
users' role (ledger RECEIVED, "awaiting SFTP upload completion"). Transfer then says how the
upload ended, on EventBridge:

* ``SFTP Server File Upload Completed`` → plan and queue the held file (``ingest_object``
  with ``upload_confirmed``; idempotent, so a file that was already queued stays as it is);
* ``SFTP Server File Upload Failed`` → the failure is recorded without losing what the ledger
  knows about the object S3 actually holds (:mod:`ingest.adapters.ledger_uploads`): PARTIAL when the
  partial object is what S3 holds, a note beside the entry when S3 still has a complete one;
* ``SFTP Server File Rename Completed`` → a rename on Transfer is a CopyObject by the users'
  role and emits no upload event, so the renamed object would be held for ever. The common
  "upload ``name.filepart``, then rename" habit of WinSCP and FileZilla relies on it. The
  renamed object is released, unless the file it was renamed from is a PARTIAL upload: then it
  is PARTIAL too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from msgspec.structs import asdict

from ingest.domain.events import (
    TRANSFER_EVENT_SOURCE,
    TRANSFER_RENAME_COMPLETED,
    TRANSFER_UPLOAD_COMPLETED,
    TRANSFER_UPLOAD_FAILED,
    LandedObject,
    landed_objects,
    transfer_path,
)
from ingest.domain.files import FileStatus
from ingest.errors import InvalidEventError, ObjectNotFoundError
from ingest.usecases.fanout import FanoutPorts, FanoutResult, ingest_object
from ingest.usecases.ports import FileLedger, ObjectStore


def handle_upload_event(event: Mapping[str, Any], ports: FanoutPorts) -> dict[str, Any]:
    """Apply one Transfer upload or rename event; returns what was done."""
    ledger, store = ports.ledger, ports.store

    def ingest(obj: LandedObject) -> FanoutResult:
        return ingest_object(obj, ports)

    if event.get("source") != TRANSFER_EVENT_SOURCE:
        raise InvalidEventError(f"not a Transfer Family event: source {event.get('source')!r}")
    kind = event.get("detail-type")
    detail = event.get("detail") or {}
    if kind == TRANSFER_UPLOAD_COMPLETED:
        results = [ingest(obj) for obj in landed_objects(event)]
        return {"event": kind, "files": [asdict(r) for r in results]}
    if kind == TRANSFER_UPLOAD_FAILED:
        bucket, key = transfer_path(detail, "file-path")
        size = detail.get("bytes")
        outcome = ledger.record_failed_upload(
            key,
            reason=_failure_reason(detail),
            size=int(size) if size is not None else None,
            object_etag=_etag_in_s3(store, bucket, key),
        )
        return {"event": kind, "files": [{"key": key, "outcome": _outcome(outcome)}]}
    if kind == TRANSFER_RENAME_COMPLETED:
        return {"event": kind, "files": [_follow_rename(detail, ingest, ledger, store)]}
    raise InvalidEventError(f"unexpected Transfer event type {kind!r}")


def _follow_rename(
    detail: Mapping[str, Any],
    ingest: Callable[[LandedObject], FanoutResult],
    ledger: FileLedger,
    store: ObjectStore,
) -> dict[str, Any]:
    _, original = transfer_path(detail, "original-file-path")
    bucket, key = transfer_path(detail, "renamed-file-path")
    source = ledger.get_file(original)
    if source is not None and source.status == FileStatus.PARTIAL:
        outcome = ledger.record_failed_upload(
            key,
            reason=f"renamed from {original}, an upload that did not complete ({source.reason})",
            size=None,
            object_etag=_etag_in_s3(store, bucket, key),
        )
        return {"key": key, "outcome": _outcome(outcome), "renamed_from": original}
    result = ingest(LandedObject(bucket=bucket, key=key, upload_confirmed=True))
    return {**asdict(result), "renamed_from": original}


def _outcome(status: FileStatus | None) -> str:
    return status.value if status else "FAILED_UPLOAD_NOTED"


def _etag_in_s3(store: ObjectStore, bucket: str, key: str) -> str | None:
    try:
        return store.head(bucket, key).etag
    except ObjectNotFoundError:
        return None


def _failure_reason(detail: Mapping[str, Any]) -> str:
    code = detail.get("failure-code") or "UNKNOWN_ERROR"
    message = detail.get("failure-message") or "the SFTP upload did not complete"
    return f"{code}: {message}"
