"""What the ledger knows about a file: its statuses and its entry.

A file is identified by its S3 key and its ETag (its *version*). Each time fanout starts
ingesting a version it gives that ingestion a new id, so a version sent again later (A, then
B, then A) is ingested afresh. How the ledger stores entries is
:mod:`ingest.adapters.ledger_items`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec
from msgspec import Struct

#: The reason of a file held in RECEIVED until its SFTP server confirms the upload.
HELD_REASON = "awaiting SFTP upload completion"
#: The keys of expected-file entries: ``expected/<feed>/<partner>/<deadline>`` (MISSING, LATE)
EXPECTED_PREFIX = "expected/"


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
    #: an envelope (a zip archive) whose members were written next to it
    EXPANDED = "EXPANDED"
    #: an envelope (a PGP file) whose plaintext was written next to it
    DECRYPTED = "DECRYPTED"
    #: content already processed for the same feed and partner (``duplicate_of``): not
    #: ingested (feed option ``duplicates: skip``)
    DUPLICATE = "DUPLICATE"
    #: an expected-file deadline (``expected/<feed>/<partner>/<deadline>``) passed, plus its
    #: grace, with fewer files than expected (``expectation``)
    MISSING = "MISSING"
    #: a MISSING deadline whose files came after all (``expectation.late_files``)
    LATE = "LATE"


class FileEntry(Struct, frozen=True):
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
    #: an envelope's (EXPANDED): how many objects it wrote, and the first of their keys
    #: (``ingest status KEY`` lists them all; docs/contracts.md)
    output_count: int | None = None
    outputs: list[str] | None = None
    #: fixed-width: lines of other record types than the feed's, skipped (not rows)
    records_skipped: int = 0
    #: fixed-width: the record count the file's trailer declares
    declared_records: int | None = None
    #: the content digest recorded for duplicate detection or a checksum sidecar:
    #: ``<algorithm>:<value>`` (``sha256:<hex>``, ``md5:<hex>``, ``crc64nvme:<base64>``)
    digest: str | None = None
    #: ``duplicates: skip|fail``: the earlier file with the same content
    duplicate_of: str | None = None
    #: ``wait_for``: the checksum sidecar or done marker that released (or failed) the file
    confirmed_by: str | None = None
    #: a sidecar's or done marker's own entry (IGNORED): the data file(s) it is about
    sidecar_for: str | None = None
    #: a MISSING or LATE entry's deadline: ``{deadline, schedule, tz, grace, expected,
    #: received, late_files}`` (ingest.domain.expected)
    expectation: dict[str, Any] | None = None

    @property
    def partner(self) -> str | None:
        """The partner whose SFTP home holds the key (``inbound/<partner>/…``), or whose
        deadline an expected-file entry is (``expected/<feed>/<partner>/…``), if any."""
        parts = self.key.split("/", 3)
        if len(parts) >= 3 and parts[0] == "inbound" and parts[1]:
            return parts[1]
        if len(parts) == 4 and self.key.startswith(EXPECTED_PREFIX) and parts[2]:
            return parts[2]
        return None

    @property
    def held(self) -> bool:
        """Waiting for its SFTP server to say whether the upload completed."""
        return self.status == FileStatus.RECEIVED and self.reason == HELD_REASON

    def to_json(self) -> dict[str, Any]:
        """Every field, as plain JSON values."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class SupersededVersion(Struct, frozen=True):
    """A version of a file that a newer one replaced: what it had done by then, not counted.

    Its rows are not in the file's counters; rows of keys the newer version also has are
    overwritten by the newer version's (docs/architecture.md, "A newer version always wins").
    """

    key: str
    version: str
    ingestion: str | None
    #: its status when it was replaced
    status: str
    rows_ok: int
    rows_rejected: int
    chunks: int
    chunks_done: int
    superseded_at: float
    superseded_by: str
    version_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Every field, as plain JSON values."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]
