"""The fanout use case: a landed object → its feed → record-aligned chunk messages on SQS."""

from __future__ import annotations

import fnmatch
import logging
import posixpath
from collections.abc import Callable
from enum import StrEnum

from msgspec import Struct

from ingest.domain.chunks import DEFAULT_CHUNK_SIZE
from ingest.domain.events import LandedObject
from ingest.domain.feed_types import FeedSet
from ingest.domain.files import HELD_REASON, FileStatus
from ingest.domain.rejects import rejects_prefix
from ingest.usecases.envelopes import EnvelopeOutcome
from ingest.usecases.planning import (
    FilePlan,
    GateOutcome,
    NextGate,
    QueuePorts,
    describe,
    no_gate,
    plan_file,
    queue_plan,
)
from ingest.usecases.ports import FileLedger, MessageSender, ObjectStore
from ingest.usecases.sidecars import SidecarPorts, admit_file, sidecar_landed, waiting_reason

log = logging.getLogger(__name__)

#: Names that uploaders write while a transfer is in progress, and editors' lock files.
TEMP_NAME_PATTERNS = ("*.part", "*.filepart", "*.tmp", ".~*", "~$*", ".*.swp")
__all__ = ["HELD_REASON", "FanoutResult", "FilePlan", "Outcome", "ingest_object", "plan_file"]


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
    #: an envelope refused, or a file its admission gates failed (ledger FAILED, the reason)
    FAILED = "FAILED"
    #: a file waiting in RECEIVED for its checksum sidecar or done marker (``wait_for``)
    WAITING = "WAITING"


class FanoutResult(Struct, frozen=True):
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


class FanoutPorts(Struct, frozen=True):
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
    #: the sidecar gate (``wait_for``, :mod:`ingest.usecases.sidecars`); None: not wired
    sidecars: SidecarPorts | None = None
    #: the content gate after it (``duplicates``, :mod:`ingest.usecases.duplicates`)
    content_gate: NextGate = no_gate

    @property
    def queueing(self) -> QueuePorts:
        """What planning and queueing a file needs (the gates queue files they release)."""
        return QueuePorts(self.feeds, self.store, self.queue, self.ledger, self.default_chunk_size)


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
    held = not obj.upload_confirmed and ports.holds_upload(obj)
    if ports.sidecars is not None and sidecar_landed(
        obj, ports.queueing, ports.sidecars, ports.content_gate, held=held
    ):
        return FanoutResult(key=key, outcome=Outcome.IGNORED, size=obj.size)
    match = ports.feeds().resolve(key)
    if match is None:
        return _unmatched(obj, ports.ledger)
    info = describe(obj, ports.store)
    feed = match.feed
    chunk_size = feed.chunk_size or ports.default_chunk_size
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
    gated = _admit(plan, ingestion, ports)
    if gated is not None:
        return FanoutResult(key, Outcome(gated.outcome), feed.name, gated.chunks, info.size)
    chunks = queue_plan(plan, ingestion, ports.queueing)
    log.info(
        "queued file", extra={"key": key, "feed": feed.name, "chunks": chunks, "size": info.size}
    )
    return FanoutResult(
        key=key, outcome=Outcome.QUEUED, feed=feed.name, chunks=chunks, size=info.size
    )


def _admit(plan: FilePlan, ingestion: str, ports: FanoutPorts) -> GateOutcome | None:
    """The admission gates (sidecars, then content duplicates); None: queue the file now."""
    if ports.sidecars is None:
        return ports.content_gate(plan, ingestion)
    return admit_file(plan, ingestion, ports.queueing, ports.sidecars, ports.content_gate)


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
        reason=HELD_REASON
        if held
        else waiting_reason(plan.match.feed.wait_for)
        if ports.sidecars is not None
        else None,
    )
