"""What the ledger knows about a file: its statuses, its entry, and its item keys.

Table layout (the ledger's own DynamoDB table, ``pk``/``sk`` strings):

* ``pk = FILE#<key>``, ``sk = FILE``: the file's current entry (the latest version of the key).
  Each time fanout starts ingesting a version it gives that ingestion a new id.
* ``pk = FILE#<key>``, ``sk = CHUNK#<version>#<ingestion>#<index>``: a marker written in the
  same transaction that adds a chunk's counters to the file entry. Its conditional put is what
  makes chunk completion happen exactly once, however often SQS delivers the message. It names
  the ingestion, not just the version: a version sent again later (A, then B, then A) is a new
  ingestion whose chunks count afresh.

Other packages keep their own item kinds in the same table under their own ``pk`` prefixes
(for example ``TRANSFER#`` for connector transfers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ingest.dynamo import attr, from_item

FILE_SK = "FILE"
#: The reason of a file held in RECEIVED until its SFTP server confirms the upload.
HELD_REASON = "awaiting SFTP upload completion"


class FileStatus(StrEnum):
    """Every state a file can be in; each one is visible in ``ingest status``."""

    RECEIVED = "RECEIVED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    PROCESSED_WITH_REJECTS = "PROCESSED_WITH_REJECTS"
    FAILED = "FAILED"
    UNMATCHED = "UNMATCHED"
    PARTIAL = "PARTIAL"
    IGNORED = "IGNORED"


@dataclass(frozen=True)
class FileEntry:
    """A file as the ledger knows it (the ``ingest status --json`` contract)."""

    key: str
    status: str
    feed: str | None = None
    version: str | None = None
    etag: str | None = None
    size: int | None = None
    chunks: int = 0
    chunks_done: int = 0
    rows_ok: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    updated_at: float | None = None
    chunk_size: int | None = None
    version_id: str | None = None
    #: the id of the current ingestion of ``version`` (None on entries older than ids)
    ingestion: str | None = None
    received_at: float | None = None
    #: the last SFTP upload to this key that did not complete, when it left the object that
    #: the entry tracks in place: ``{"at", "reason", "bytes"}``
    failed_upload: dict[str, Any] | None = None

    @property
    def held(self) -> bool:
        """Waiting for its SFTP server to say whether the upload completed."""
        return self.status == FileStatus.RECEIVED and self.reason == HELD_REASON

    def to_json(self) -> dict[str, Any]:
        """Every field, as plain JSON values."""
        return asdict(self)


def file_pk(key: str) -> str:
    """The partition key of a file's ledger items."""
    return f"FILE#{key}"


def chunk_prefix(version: str, ingestion: str | None) -> str:
    """The sort-key prefix of one ingestion's chunk markers."""
    return f"CHUNK#{version}#{ingestion}#" if ingestion else f"CHUNK#{version}#"


def chunk_sk(version: str, ingestion: str | None, index: int) -> str:
    """The sort key of one chunk's marker."""
    return f"{chunk_prefix(version, ingestion)}{index:06d}"


_ENTRY_FIELDS = frozenset(f.name for f in dataclasses.fields(FileEntry))
_FLOATS = ("updated_at", "received_at")


def entry_from_item(item: Mapping[str, Any]) -> FileEntry:
    """A FILE item (DynamoDB attribute values) as a :class:`FileEntry`."""
    values = {name: v for name, v in from_item(item).items() if name in _ENTRY_FIELDS}
    for name in _FLOATS:
        if values.get(name) is not None:
            values[name] = float(values[name])
    failed = values.get("failed_upload")
    if failed is not None and failed.get("at") is not None:
        values["failed_upload"] = {**failed, "at": float(failed["at"])}
    return FileEntry(**values)


def ledger_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A whole ledger item in DynamoDB's wire format (``None`` values left out)."""
    return {name: attr(v) for name, v in values.items() if v is not None}
