"""The fanout use case: a landed object → its feed → record-aligned chunk messages on SQS."""

from __future__ import annotations

import fnmatch
import logging
import posixpath
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ingest.domain.chunks import DEFAULT_CHUNK_SIZE, Chunk, plan_chunks
from ingest.domain.events import LandedObject, ObjectInfo
from ingest.domain.feeds import FeedMatch, FeedSet
from ingest.domain.files import HELD_REASON, FileStatus
from ingest.domain.messages import ChunkMessage
from ingest.domain.rejects import rejects_prefix
from ingest.usecases.envelopes import EnvelopeOutcome
from ingest.usecases.ports import FileLedger, MessageSender, ObjectStore

log = logging.getLogger(__name__)

#: Names that uploaders write while a transfer is in progress, and editors' lock files.
TEMP_NAME_PATTERNS = ("*.part", "*.filepart", "*.tmp", ".~*", "~$*", ".*.swp")
__all__ = ["HELD_REASON", "FanoutResult", "Outcome", "ingest_object"]


class Outcome(StrEnum):
    QUEUED = "QUEUED"
    DUPLICATE = "DUPLICATE"
    UNMATCHED = "UNMATCHED"
    IGNORED = "IGNORED"
    HELD = "HELD"
    #: an envelope opened next to itself (a zip archive's members written)
    EXPANDED = "EXPANDED"
    #: an envelope decrypted next to itself (a PGP file's plaintext written)
    DECRYPTED = "DECRYPTED"
    #: an envelope refused (ledger FAILED with the reason; nothing written)
    FAILED = "FAILED"


@dataclass(frozen=True)
class FanoutResult:
    key: str
    outcome: Outcome
    feed: str | None = None
    chunks: int = 0
    size: int | None = None


def is_temporary(key: str, size: int | None) -> bool:
    """Partial-transfer and marker names that must never be ingested."""
    if key.endswith("/"):
        return True  # a "directory" marker, whatever its size
    name = posixpath.basename(key)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in TEMP_NAME_PATTERNS)


def held_by_role(role_id: str | None) -> Callable[[LandedObject], bool]:
    """A ``holds_upload`` predicate: objects written by sessions of this IAM role are held.

    S3 reports the writer of an object as ``AWS:<RoleId>:<session>`` in the notification's
    ``userIdentity.principalId``; Transfer Family users write with their access role.
    """
    if not role_id:
        return lambda _: False
    prefix = f"AWS:{role_id}:"
    return lambda obj: (obj.principal_id or "").startswith(prefix)


@dataclass(frozen=True)
class FanoutPorts:
    """What fanout talks to; ``feeds`` is called per object so a cache may refresh."""

    feeds: Callable[[], FeedSet]
    store: ObjectStore
    queue: MessageSender
    ledger: FileLedger
    default_chunk_size: int = DEFAULT_CHUNK_SIZE
    #: whether an object was written by an SFTP server that may leave partial files
    #: (Transfer Family): such an object waits in RECEIVED for the server's outcome event
    holds_upload: Callable[[LandedObject], bool] = lambda _: False
    #: opens envelopes (``ingest.usecases.envelopes.open_envelope``); None when not one
    envelopes: Callable[[LandedObject], EnvelopeOutcome | None] | None = None


def ingest_object(obj: LandedObject, ports: FanoutPorts) -> FanoutResult:
    """Plan and queue one landed object. Idempotent: a duplicate event queues nothing.

    A held object (see ``FanoutPorts.holds_upload``) is recorded RECEIVED and queued only when
    it comes back as ``upload_confirmed``.
    """
    key = obj.key
    if is_temporary(key, obj.size):
        log.info("ignoring temporary or marker object", extra={"key": key})
        return FanoutResult(key=key, outcome=Outcome.IGNORED, size=obj.size)
    if ports.envelopes is not None and (opened := ports.envelopes(obj)) is not None:
        return FanoutResult(key, Outcome(opened.status), feed=opened.feed, size=opened.size)
    match = ports.feeds().resolve(key)
    if match is None:
        return _unmatched(obj, ports.ledger)
    info = _describe(obj, ports.store)
    feed = match.feed
    chunk_size = feed.chunk_size or ports.default_chunk_size
    held = not obj.upload_confirmed and ports.holds_upload(obj)
    plan = (
        FilePlan(obj.bucket, key, info, match, chunk_size, [])
        if held
        else plan_file(obj.bucket, key, info, match=match, store=ports.store, chunk_size=chunk_size)
    )
    ingestion = _start(plan, ports, held=held)
    if not ingestion:
        log.info("duplicate event for an already queued file", extra={"key": key})
        return FanoutResult(key=key, outcome=Outcome.DUPLICATE, feed=feed.name, size=info.size)
    if held:
        log.info("holding SFTP upload until the server confirms it", extra={"key": key})
        return FanoutResult(key=key, outcome=Outcome.HELD, feed=feed.name, size=info.size)
    ports.queue.send_all(plan.messages(ingestion=ingestion))
    ports.ledger.mark_queued(key, info.etag, ingestion)
    chunks = len(plan.chunks)
    log.info(
        "queued file", extra={"key": key, "feed": feed.name, "chunks": chunks, "size": info.size}
    )
    return FanoutResult(
        key=key, outcome=Outcome.QUEUED, feed=feed.name, chunks=chunks, size=info.size
    )


def _unmatched(obj: LandedObject, ledger: FileLedger) -> FanoutResult:
    ledger.record_terminal(
        obj.key,
        FileStatus.UNMATCHED,
        reason="no feed matches this key",
        size=obj.size,
        etag=obj.etag,
        version=obj.etag,
    )
    log.warning("no feed owns this key", extra={"key": obj.key})
    return FanoutResult(key=obj.key, outcome=Outcome.UNMATCHED, size=obj.size)


def _start(plan: FilePlan, ports: FanoutPorts, *, held: bool) -> str | None:
    """Register the file version in the ledger as a new ingestion (None: a duplicate).

    The ledger identifies a file's content by its ETag: a re-upload of identical bytes is a
    duplicate, a changed file is a new ingestion, and chunk messages can be checked against it.
    """
    info = plan.info
    previous = ports.ledger.get_file(plan.key)
    if previous is not None and previous.version not in (None, info.etag):
        # A new version replaces the file: its reject files must not outlive it.
        ports.store.delete_prefix(plan.bucket, rejects_prefix(plan.key))
    return ports.ledger.start_file(
        key=plan.key,
        feed=plan.match.feed.name,
        version=info.etag,
        etag=info.etag,
        size=info.size,
        chunks=len(plan.chunks),
        chunk_size=plan.chunk_size,
        version_id=info.version_id,
        reason=HELD_REASON if held else None,
    )


@dataclass(frozen=True)
class FilePlan:
    """A file version and the chunks it is processed in."""

    bucket: str
    key: str
    info: ObjectInfo
    match: FeedMatch
    chunk_size: int
    chunks: list[Chunk]

    def messages(
        self, *, ingestion: str | None, only: Container[int] | None = None
    ) -> Iterator[dict[str, Any]]:
        """The chunk messages' bodies for one ingestion (``only``: just these indices)."""
        for chunk in self.chunks:
            if only is not None and chunk.index not in only:
                continue
            yield ChunkMessage(
                bucket=self.bucket,
                key=self.key,
                version=self.info.etag,
                version_id=self.info.version_id,
                feed=self.match.feed.name,
                index=chunk.index,
                chunks=len(self.chunks),
                start=chunk.start,
                end=chunk.end,
                first_line=chunk.first_line,
                compressed=self.match.compressed,
                ingestion=ingestion or "",
            ).to_body()


def plan_file(
    bucket: str,
    key: str,
    info: ObjectInfo,
    *,
    match: FeedMatch,
    store: ObjectStore,
    chunk_size: int,
) -> FilePlan:
    """Plan a file's record-aligned chunks; the file is read only when it is split."""
    splittable = match.feed.splittable and not match.compressed
    chunks = plan_chunks(
        info.size,
        chunk_size,
        splittable=splittable,
        read_blocks=store.iter_blocks(bucket, key, version_id=info.version_id)
        if splittable and info.size > chunk_size
        else None,
    )
    return FilePlan(bucket, key, info, match, chunk_size, chunks)


def _describe(obj: LandedObject, store: ObjectStore) -> ObjectInfo:
    """Size, ETag and version from the event when it has them all, else from S3."""
    if obj.size is not None and obj.etag:
        return ObjectInfo(size=obj.size, etag=obj.etag, version_id=obj.version_id)
    return store.head(obj.bucket, obj.key, obj.version_id)
