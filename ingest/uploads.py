"""Transfer Family upload outcomes: release held uploads, record failed ones as PARTIAL.

Transfer Family writes an upload to S3 as it arrives, so the S3 event also fires for a
transfer that is later cut off. The fanout therefore *holds* objects written by the Transfer
users' role (ledger RECEIVED, "awaiting SFTP upload completion"). Transfer then says how the
upload ended, on EventBridge:

* ``SFTP Server File Upload Completed`` → plan and queue the held file (``ingest_object``
  with ``upload_confirmed``; idempotent, so a file that was already queued stays as it is);
* ``SFTP Server File Upload Failed`` → ledger ``PARTIAL`` with Transfer's failure code and
  message; the partial object is never processed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from ingest.errors import InvalidEventError
from ingest.events import TRANSFER_UPLOAD_COMPLETED, LandedObject, landed_objects
from ingest.fanout import FanoutResult
from ingest.ledger import FileStatus, Ledger

TRANSFER_UPLOAD_FAILED = "SFTP Server File Upload Failed"
TRANSFER_SOURCE = "aws.transfer"


def handle_upload_event(
    event: Mapping[str, Any],
    *,
    ingest: Callable[[LandedObject], FanoutResult],
    ledger: Ledger,
) -> dict[str, Any]:
    """Apply one Transfer upload event; returns what was done (for the function's response)."""
    if event.get("source") != TRANSFER_SOURCE:
        raise InvalidEventError(f"not a Transfer Family event: source {event.get('source')!r}")
    kind = event.get("detail-type")
    if kind == TRANSFER_UPLOAD_COMPLETED:
        results = [ingest(obj) for obj in landed_objects(event)]
        return {"event": kind, "files": [asdict(r) for r in results]}
    if kind == TRANSFER_UPLOAD_FAILED:
        key, size, reason = _failure(event.get("detail") or {})
        ledger.record_terminal(key, FileStatus.PARTIAL, reason=reason, size=size)
        return {"event": kind, "files": [{"key": key, "outcome": FileStatus.PARTIAL.value}]}
    raise InvalidEventError(f"unexpected Transfer event type {kind!r}")


def _failure(detail: Mapping[str, Any]) -> tuple[str, int | None, str]:
    try:
        _bucket, _, key = str(detail["file-path"]).lstrip("/").partition("/")
    except KeyError as exc:
        raise InvalidEventError("upload-failed event without file-path") from exc
    if not key:
        raise InvalidEventError(f"file-path {detail['file-path']!r} is not /<bucket>/<key>")
    code = detail.get("failure-code") or "UNKNOWN_ERROR"
    message = detail.get("failure-message") or "the SFTP upload did not complete"
    size = detail.get("bytes")
    return key, int(size) if size is not None else None, f"{code}: {message}"
