"""The ports the use cases talk to: Protocols that the AWS adapters implement.

The use cases import these, never an adapter; ``lambdas/`` (and the CLI) build the adapters and
pass them in. A test or a benchmark may pass any object with the same methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol

from msgspec import Struct

if TYPE_CHECKING:
    from ingest.domain.digests import Digest
    from ingest.domain.envelopes import EnvelopeKind, EnvelopeSource
    from ingest.domain.events import ObjectInfo
    from ingest.domain.feed_types import Feed
    from ingest.domain.files import FileEntry, FileStatus
    from ingest.domain.records import RecordRow
    from ingest.domain.sidecars import SidecarNote, WaitingFile


class ObjectStore(Protocol):
    """Landed objects (read, pinned to one version) and reject files (written)."""

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo: ...

    def open_range(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None,
        start: int,
        etag: str | None,
        end: int | None = None,
    ) -> IO[bytes]: ...

    def iter_blocks(self, bucket: str, key: str, *, version_id: str | None) -> Iterator[bytes]: ...

    def put_file(self, bucket: str, key: str, body: IO[bytes], content_type: str) -> None: ...

    def delete_prefix(self, bucket: str, prefix: str) -> int: ...


class MessageSender(Protocol):
    """The chunk queue."""

    def send_all(self, bodies: Iterable[dict[str, Any]]) -> int: ...

    def send_raw(self, bodies: Iterable[str]) -> int: ...


class Redelivery(Protocol):
    """Brings a received message back after ``seconds`` (instead of its visibility timeout)."""

    def delay(self, receipt_handle: str, seconds: int) -> None: ...


class DeadLetter(Protocol):
    """A message taken off the dead-letter queue (invisible there until returned)."""

    @property
    def body(self) -> str: ...


class DeadLetters(Protocol):
    """The dead-letter queue of the ingest queue."""

    def take(self, limit: int) -> list[Any]: ...

    def return_to_queue(self, letters: list[Any]) -> None: ...

    def release(self, letters: list[Any]) -> None: ...

    def remaining(self) -> int: ...


class Lease(Struct, frozen=True):
    """The lease one chunk of one ingestion holds on its file while it writes."""

    key: str
    version: str
    ingestion: str | None
    index: int


class ChunkLeases(Protocol):
    """Leases on files (``ingest.adapters.leases``)."""

    def hold(self, lease: Lease, ttl: float) -> float: ...

    def release(self, lease: Lease) -> None: ...

    def others_live(self, lease: Lease) -> list[Any]: ...


class WriteFence(Protocol):
    """What a record writer asks before each request it sends; when it raises, no further
    request is sent (``ingest.usecases.fencing``)."""

    def before_send(self) -> None: ...

    def check(self) -> None:
        """Check at once (before a write of the chunk's own, such as its reject file)."""


class RejectRow(Protocol):
    """Sets a row aside with its reason; called from the writer threads too, so thread-safe."""

    def __call__(self, line: int, reason: str, raw: str) -> None: ...


class RecordWriter(Protocol):
    """The records table: returns how many rows were written; the rest went to ``reject``."""

    def write(
        self, rows: Iterable[RecordRow], reject: RejectRow, fence: WriteFence | None = None
    ) -> int: ...


class FileLedger(Protocol):
    """What the use cases read and write of the ledger (``ingest.adapters.ledger``)."""

    def get_file(self, key: str) -> FileEntry | None: ...

    def start_file(
        self,
        *,
        key: str,
        feed: str | None,
        version: str,
        etag: str,
        size: int,
        chunks: int,
        chunk_size: int | None = None,
        version_id: str | None = None,
        reason: str | None = None,
    ) -> str | None: ...

    def mark_queued(self, key: str, version: str, ingestion: str | None = None) -> None: ...

    def record_terminal(
        self,
        key: str,
        status: FileStatus,
        *,
        reason: str,
        size: int | None = None,
        etag: str | None = None,
        version: str | None = None,
        feed: str | None = None,
    ) -> None: ...

    def record_failed_upload(
        self, key: str, *, reason: str, size: int | None, object_etag: str | None
    ) -> FileStatus | None: ...

    def mark_processing(self, key: str, version: str, ingestion: str | None = None) -> None: ...

    def complete_chunk(
        self,
        key: str,
        version: str,
        index: int,
        *,
        rows_ok: int,
        rows_rejected: int,
        ingestion: str | None = None,
        skipped: int = 0,
        declared: int | None = None,
    ) -> bool: ...

    def finish_if_complete(
        self,
        key: str,
        version: str,
        ingestion: str | None = None,
        *,
        verify: Callable[[FileEntry], str | None] | None = None,
    ) -> FileEntry | None: ...

    def mark_failed(
        self, key: str, version: str, reason: str, ingestion: str | None = None
    ) -> None: ...

    def done_chunks(self, key: str, version: str, ingestion: str | None = None) -> set[int]: ...

    def mark_requeued(
        self,
        key: str,
        version: str,
        ingestion: str | None = None,
        *,
        reason: str | None = None,
    ) -> bool: ...


class EnvelopeStep(Protocol):
    """Opens one kind of envelope (``ingest.adapters.s3_zip.ZipExpander`` for ``.zip``).

    Writes what the envelope holds next to it and returns the keys written, all of them or
    none: a refused envelope raises a ``PermanentError`` with nothing written.
    """

    def open(self, source: EnvelopeSource, feed: Feed | None) -> list[str]: ...


class EnvelopeRecords(Protocol):
    """What the ledger keeps of envelope steps (``ingest.adapters.ledger_envelopes``)."""

    def record_outputs(
        self,
        key: str,
        version: str,
        ingestion: str | None,
        kind: EnvelopeKind,
        outputs: Sequence[str],
    ) -> bool: ...


class ContentDigests(Protocol):
    """A landed object's content digest (``ingest.adapters.s3_digest``)."""

    def streamed(self, bucket: str, key: str, *, version_id: str | None, algorithm: str) -> str:
        """The hex digest of the object's bytes, read once in constant memory."""

    def stored(self, bucket: str, key: str, *, version_id: str | None) -> Digest | None:
        """S3's own full-object checksum of the object (SHA-256, CRC64NVME), if it has one."""


class SidecarLedger(Protocol):
    """What the ledger keeps for checksum sidecars and done markers
    (``ingest.adapters.ledger_sidecars``)."""

    def note_sidecar(self, note: SidecarNote) -> None: ...

    def sidecar_notes(self, subjects: Sequence[str]) -> list[SidecarNote]: ...

    def record_sidecar(
        self, key: str, *, reason: str, sidecar_for: str, size: int | None, etag: str | None
    ) -> None: ...

    def await_file(self, waiting: WaitingFile) -> None: ...

    def waiting_files(self) -> list[WaitingFile]: ...

    def forget_waiting(self, key: str) -> None: ...

    def claim_release(
        self, key: str, version: str, ingestion: str, *, confirmed_by: str, stale_before: float
    ) -> str | None: ...

    def note_confirmation(
        self, key: str, version: str, *, confirmed_by: str, digest: str | None
    ) -> None: ...

    def fail_file(
        self,
        key: str,
        version: str,
        reason: str,
        *,
        ingestion: str | None = None,
        confirmed_by: str | None = None,
        digest: str | None = None,
    ) -> bool: ...


class DigestLedger(Protocol):
    """The ledger's index of processed content, by feed, partner and digest
    (``ingest.adapters.ledger_digests``)."""

    def claim_digest(
        self,
        *,
        feed: str,
        partner: str,
        digest: Digest,
        key: str,
        version: str,
        expires_at: float,
        now: float,
    ) -> str | None:
        """Index the content as ``key``'s; None when it is now ours, else the earlier key."""

    def release_digest(self, *, feed: str, partner: str, digest: Digest, key: str) -> None: ...

    def record_digest(self, key: str, version: str, digest: Digest) -> None: ...

    def mark_duplicate(
        self,
        key: str,
        version: str,
        ingestion: str,
        *,
        status: FileStatus,
        reason: str,
        duplicate_of: str,
        digest: Digest,
    ) -> bool: ...
