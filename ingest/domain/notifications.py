"""The EventBridge events sftp-ingest sends, so users route outcomes with rules of their own.

Every event is on the default bus with ``source: sftp-ingest``; its ``detail-type`` says what
happened (``sftp-ingest File Processed``, ``sftp-ingest File Failed``, ...,
``sftp-ingest Expected File Missing``), and its ``detail`` uses AWS's kebab-case field names,
as Transfer Family's own events do. A file's event carries a deterministic ``event-id`` (one
per version, ingestion and status), so a consumer can drop the copies that at-least-once
delivery brings. docs/operations.md ("Notifications") lists every field and example rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from msgspec import Struct, field

from ingest.domain.files import FileEntry

SOURCE = "sftp-ingest"

#: final file status -> what its event's ``detail-type`` says after ``sftp-ingest ``
FILE_DETAIL_TYPES: Mapping[str, str] = {
    "PROCESSED": "File Processed",
    "PROCESSED_WITH_REJECTS": "File Processed With Rejects",
    "FAILED": "File Failed",
    "UNMATCHED": "File Unmatched",
    "PARTIAL": "File Partial",
    "EXPANDED": "File Expanded",
    "DECRYPTED": "File Decrypted",
    "DUPLICATE": "File Duplicate",
}
#: the statuses a file's ledger entry ends in (one receipt and one event each)
FINAL_STATUSES = frozenset(FILE_DETAIL_TYPES)
#: expected-file schedules' outcomes (their own ledger items and events, not files')
EXPECTED_MISSING = "Expected File Missing"
EXPECTED_LATE = "Expected File Late"


def detail_type(what: str) -> str:
    """The full ``detail-type`` of an event: ``sftp-ingest <what>``."""
    return f"{SOURCE} {what}"


class BusEvent(Struct, frozen=True):
    """One event to put on the bus: ``detail`` is sent as JSON, in the mapping's key order."""

    detail_type: str
    detail: Mapping[str, Any]
    resources: Sequence[str] = field(default_factory=tuple)


def iso(at: float | None) -> str | None:
    """A Unix time as EventBridge writes times (``2026-05-01T12:00:00.123Z``), None as None."""
    if at is None:
        return None
    moment = datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def object_arn(bucket: str, key: str) -> str:
    """The ARN of an S3 object, as an event's ``resources`` names it."""
    return f"arn:aws:s3:::{bucket}/{key}"


def event_id(entry: FileEntry) -> str:
    """The same id for every copy of one version's, ingestion's and status's event."""
    parts = (entry.key, entry.version or entry.etag or "", entry.ingestion or "", entry.status)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def rejects_ratio(rows_ok: int, rows_rejected: int) -> float:
    """The share of a file's rows that were rejected (0 for a file with no rows)."""
    total = rows_ok + rows_rejected
    return round(rows_rejected / total, 6) if total else 0.0


def file_event(entry: FileEntry, *, bucket: str, receipt: str | None) -> BusEvent:
    """The event of a file whose entry reached a final status (``receipt``: its receipt's key)."""
    detail: dict[str, Any] = {
        "event-id": event_id(entry),
        "bucket": bucket,
        "key": entry.key,
        "partner": entry.partner,
        "feed": entry.feed,
        "status": entry.status,
        "rows-ok": entry.rows_ok,
        "rows-rejected": entry.rows_rejected,
        "rejects-ratio": rejects_ratio(entry.rows_ok, entry.rows_rejected),
        "reason": entry.reason,
        "size": entry.size,
        "etag": entry.etag or entry.version,
        "version-id": entry.version_id,
        "ingestion-id": entry.ingestion,
        "received-at": iso(entry.received_at),
        "finished-at": iso(entry.updated_at),
        "receipt-key": receipt,
    }
    if entry.output_count is not None:
        detail["output-count"] = entry.output_count
    return BusEvent(
        detail_type=detail_type(FILE_DETAIL_TYPES[entry.status]),
        detail=detail,
        resources=(object_arn(bucket, entry.key),),
    )
