"""The sidecar gate: files that wait for a checksum sidecar or a done marker (``wait_for``).

A file of a feed with ``wait_for: checksum`` or ``done`` is registered ``RECEIVED`` ("awaiting
checksum" / "awaiting done marker") and indexed as waiting; it is queued only once its sidecar
or marker is there (:mod:`ingest.domain.sidecars`). Whichever lands second releases it:

* the file: after registering and indexing itself, it reads the notes its sidecars left;
* the sidecar: after noting itself beside its subject, it reads the file's entry (a checksum)
  or the waiting index (a marker).

Each writes before it reads, and DynamoDB reads are consistent, so at least one of the two
sees the other. Both may: the release is a conditional write on the file's entry (still this
version and ingestion, still waiting), which only one wins, and the winner's new ingestion is
the only one queued. An invocation that dies after winning leaves the entry "releasing": the
scheduled sweep (:func:`sweep_waiting`) takes it over once that is older than a function's
timeout, and fails files that waited longer than their feed's ``wait_timeout``.

A checksum sidecar is verified against the file's digest, streamed from S3: a mismatch is
``FAILED`` with both digests. With ``wait_for: none`` a sidecar that is there is verified too
(before the file is queued, or after it was processed: then the entry says so).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from msgspec import Struct

from ingest.domain.events import LandedObject, ObjectInfo
from ingest.domain.feed_types import WaitFor
from ingest.domain.files import FileEntry, FileStatus
from ingest.domain.sidecars import (
    AWAITING,
    RELEASING,
    Sidecar,
    SidecarNote,
    WaitingFile,
    confirms,
    declared_digest,
    mismatch_reason,
    parse_sidecar,
    subjects_of,
    timeout_reason,
)
from ingest.usecases.planning import (
    FilePlan,
    GateOutcome,
    NextGate,
    QueuePorts,
    describe,
    plan_file,
    queue_plan,
)
from ingest.usecases.ports import ContentDigests, SidecarLedger

log = logging.getLogger(__name__)

#: A checksum sidecar is read up to this many bytes (a digest and a file name).
SIDECAR_READ_LIMIT = 4096
#: A "releasing" entry older than this was left by an invocation that died (the functions'
#: timeout is 15 minutes): the sweep takes it over.
RELEASE_LEASE_SECONDS = 960.0
_DONE_PAST_RECEIVED = frozenset(
    {
        FileStatus.QUEUED,
        FileStatus.PROCESSING,
        FileStatus.PROCESSED,
        FileStatus.PROCESSED_WITH_REJECTS,
    }
)


class SidecarPorts(Struct, frozen=True):
    notes: SidecarLedger
    digests: ContentDigests
    clock: Callable[[], float] = time.time
    release_lease: float = RELEASE_LEASE_SECONDS


class _Gate(Struct, frozen=True):
    """One gate call's context: the landing bucket, the ports, and the gate after this one."""

    bucket: str
    base: QueuePorts
    ports: SidecarPorts
    then: NextGate


def is_waiting(entry: FileEntry) -> bool:
    """Held in RECEIVED for its sidecar or marker (or being released)."""
    return entry.status == FileStatus.RECEIVED and (
        entry.reason in AWAITING.values() or entry.reason == RELEASING
    )


def waiting_reason(wait_for: WaitFor) -> str | None:
    """The RECEIVED reason a file of a feed with this ``wait_for`` is registered with."""
    return AWAITING.get(wait_for)


# --- a data file lands ---------------------------------------------------------------------


def admit_file(
    plan: FilePlan, ingestion: str, base: QueuePorts, ports: SidecarPorts, then: NextGate
) -> GateOutcome | None:
    """The gate for a data file just registered (RECEIVED, with :func:`waiting_reason`).

    None lets the file through to ``then`` and the queue; else what became of it."""
    feed = plan.match.feed
    key = plan.key
    if feed.wait_for is WaitFor.NONE:
        note = next((n for n in ports.notes.sidecar_notes((key,)) if n.kind.is_checksum), None)
        if note is None:
            return then(plan, ingestion)
        gate = _Gate(plan.bucket, base, ports, then)
        failed = _verify(gate, key, plan.info, note, ingestion)
        return failed if failed is not None else then(plan, ingestion)
    now = ports.clock()
    ports.notes.await_file(
        WaitingFile(
            key=key,
            version=plan.info.etag,
            ingestion=ingestion,
            feed=feed.name,
            wait_for=feed.wait_for,
            since=now,
            deadline=now + feed.wait_timeout,
        )
    )
    # written the entry and the index first: a sidecar landing now finds one or the other
    notes = [
        n for n in ports.notes.sidecar_notes(subjects_of(key)) if confirms(n, key, feed.wait_for)
    ]
    if not notes:
        log.info("file waits for its sidecar", extra={"key": key, "wait_for": feed.wait_for.value})
        return GateOutcome("WAITING", reason=waiting_reason(feed.wait_for))
    entry = base.ledger.get_file(key)
    if entry is None:
        return GateOutcome("DUPLICATE", reason="the entry changed while it was admitted")
    return _release(_Gate(plan.bucket, base, ports, then), entry, notes[0], stale_before=None)


# --- a sidecar lands -----------------------------------------------------------------------


def sidecar_landed(
    obj: LandedObject, base: QueuePorts, ports: SidecarPorts, then: NextGate, *, held: bool
) -> GateOutcome | None:
    """Handle ``obj`` if it is a sidecar or marker (None: it is not one).

    Its own entry is IGNORED with what it did (``sidecar_for``); the outcome is IGNORED. A
    ``held`` one (an SFTP upload not yet confirmed: it may be partial) is only recorded; its
    upload-completed event brings it back."""
    sidecar = parse_sidecar(obj.key)
    if sidecar is None:
        return None
    info = describe(obj, base.store)
    if held:
        reason = f"sidecar of {sidecar.subject}: held until its SFTP upload completes"
        ports.notes.record_sidecar(
            obj.key, reason=reason, sidecar_for=sidecar.subject, size=info.size, etag=info.etag
        )
        return GateOutcome("IGNORED", reason=reason)
    note = _read_note(obj.bucket, sidecar, info, base)
    ports.notes.note_sidecar(note)  # first: a file landing now finds it
    gate = _Gate(obj.bucket, base, ports, then)
    if sidecar.kind.is_checksum:
        entry = base.ledger.get_file(sidecar.subject)
        said = _checksum_landed(gate, entry, note)
        what = f"checksum sidecar of {sidecar.subject}"
    else:
        said = _marker_landed(gate, note)
        what = f"done marker of {sidecar.subject}.*"
    reason = f"{what}: {said}" + (f" ({note.problem})" if note.problem else "")
    ports.notes.record_sidecar(
        obj.key, reason=reason, sidecar_for=sidecar.subject, size=info.size, etag=info.etag
    )
    log.info("sidecar landed", extra={"key": obj.key, "reason": reason})
    return GateOutcome("IGNORED", reason=reason)


def _read_note(bucket: str, sidecar: Sidecar, info: ObjectInfo, base: QueuePorts) -> SidecarNote:
    declared = problem = None
    if sidecar.kind.is_checksum:
        with base.store.open_range(
            bucket,
            sidecar.key,
            version_id=info.version_id,
            start=0,
            etag=info.etag,
            end=SIDECAR_READ_LIMIT,
        ) as stream:
            text = stream.read(SIDECAR_READ_LIMIT).decode("utf-8", errors="replace")
        declared, problem = declared_digest(sidecar.kind, text)
    return SidecarNote(
        subject=sidecar.subject,
        kind=sidecar.kind,
        sidecar_key=sidecar.key,
        etag=info.etag,
        declared=declared,
        problem=problem,
    )


def _checksum_landed(gate: _Gate, entry: FileEntry | None, note: SidecarNote) -> str:
    if entry is None or entry.version is None:
        return "remembered until the file lands"
    if entry.held:
        return "remembered until the file's SFTP upload completes"
    if is_waiting(entry):
        if entry.reason != AWAITING[WaitFor.CHECKSUM] and entry.reason != RELEASING:
            return f"noted; the file's feed waits for a done marker ({entry.reason})"
        return _said(_release(gate, entry, note, stale_before=None))
    if entry.status not in _DONE_PAST_RECEIVED and entry.status != FileStatus.RECEIVED:
        return f"noted; the file is {entry.status} and was not verified"
    info = ObjectInfo(entry.size or 0, entry.version, entry.version_id)
    failed = _verify(gate, entry.key, info, note, None, was=entry.status)
    if failed is None:
        return f"verified the {entry.status} file: {note.kind} matches"
    return f"MISMATCH: the file was already {entry.status}; it is now FAILED (its chunks stop)"


def _marker_landed(gate: _Gate, note: SidecarNote) -> str:
    released = []
    for waiting in gate.ports.notes.waiting_files():
        if not waiting.key.startswith(note.subject) or not confirms(
            note, waiting.key, waiting.wait_for
        ):
            continue
        entry = gate.base.ledger.get_file(waiting.key)
        if entry is None or not is_waiting(entry) or entry.version != waiting.version:
            continue
        outcome = _release(gate, entry, note, stale_before=None)
        released.append(f"{waiting.key} {_said(outcome)}")
    if not released:
        return "remembered until a waiting file lands"
    return "; ".join(released)


def _said(outcome: GateOutcome) -> str:
    return {
        "QUEUED": "released the file",
        "FAILED": f"the file is FAILED: {outcome.reason}",
        "DUPLICATE": "the file is being released by another invocation",
    }.get(outcome.outcome, f"the file is {outcome.outcome}: {outcome.reason}")


# --- releasing a waiting file --------------------------------------------------------------


def _release(
    gate: _Gate, entry: FileEntry, note: SidecarNote, *, stale_before: float | None
) -> GateOutcome:
    """Claim the waiting ``entry`` (exactly one invocation wins), verify it, and queue it."""
    assert entry.version is not None and entry.ingestion is not None
    base, ports, then = gate.base, gate.ports, gate.then
    now = ports.clock()
    ingestion = ports.notes.claim_release(
        entry.key,
        entry.version,
        entry.ingestion,
        confirmed_by=note.sidecar_key,
        stale_before=stale_before if stale_before is not None else now - ports.release_lease,
    )
    if ingestion is None:
        return GateOutcome("DUPLICATE", reason="released by another invocation")
    match = base.feeds().resolve(entry.key)
    if match is None:
        reason = "no feed matches this key any more"
        ports.notes.fail_file(entry.key, entry.version, reason, ingestion=ingestion)
        ports.notes.forget_waiting(entry.key)
        return GateOutcome("FAILED", reason=reason)
    info = ObjectInfo(entry.size or 0, entry.version, entry.version_id)
    if note.kind.is_checksum:
        failed = _verify(gate, entry.key, info, note, ingestion)
        if failed is not None:
            ports.notes.forget_waiting(entry.key)
            return failed
    plan = plan_file(
        gate.bucket,
        entry.key,
        info,
        match=match,
        store=base.store,
        chunk_size=entry.chunk_size or match.feed.chunk_size or base.default_chunk_size,
    )
    gated = then(plan, ingestion)
    if gated is None:
        chunks = queue_plan(plan, ingestion, base)
        gated = GateOutcome("QUEUED", chunks=chunks)
        log.info("released waiting file", extra={"key": entry.key, "by": note.sidecar_key})
    ports.notes.forget_waiting(entry.key)
    return gated


def _verify(
    gate: _Gate,
    key: str,
    info: ObjectInfo,
    note: SidecarNote,
    ingestion: str | None,
    *,
    was: str | None = None,
) -> GateOutcome | None:
    """Compare the file's streamed digest with the sidecar's; None when they match (the digest
    and the sidecar are recorded on the entry), else FAILED with both digests."""
    ports = gate.ports
    algorithm = note.kind.value
    if note.declared is None:
        reason = f"checksum sidecar {note.sidecar_key} is unusable: {note.problem}"
        ports.notes.fail_file(
            key, info.etag, reason, ingestion=ingestion, confirmed_by=note.sidecar_key
        )
        return GateOutcome("FAILED", reason=reason)
    actual = ports.digests.streamed(
        gate.bucket, key, version_id=info.version_id, algorithm=algorithm
    )
    digest = f"{algorithm}:{actual}"
    if actual == note.declared:
        ports.notes.note_confirmation(key, info.etag, confirmed_by=note.sidecar_key, digest=digest)
        return None
    reason = mismatch_reason(note.sidecar_key, algorithm, note.declared, actual)
    if was in (FileStatus.PROCESSED, FileStatus.PROCESSED_WITH_REJECTS):
        reason += f" (the file was already {was} before its sidecar landed: its rows are written)"
    elif was is not None:
        reason += (
            f" (the file was already {was} before its sidecar landed: its chunks stop, rows "
            "they wrote stay)"
        )
    ports.notes.fail_file(
        key, info.etag, reason, ingestion=ingestion, confirmed_by=note.sidecar_key, digest=digest
    )
    log.warning("checksum mismatch", extra={"key": key, "reason": reason})
    return GateOutcome("FAILED", reason=reason)


# --- the scheduled sweep -------------------------------------------------------------------


class SweepReport(Struct, frozen=True):
    waiting: int = 0
    timed_out: int = 0
    released: int = 0
    forgotten: int = 0


def sweep_waiting(
    now: float, bucket: str, base: QueuePorts, ports: SidecarPorts, then: NextGate
) -> SweepReport:
    """Fail the files that waited past their feed's ``wait_timeout``; take over releases an
    invocation left half done; drop index items of files no longer waiting."""
    gate = _Gate(bucket, base, ports, then)
    waiting = timed_out = released = forgotten = 0
    for item in ports.notes.waiting_files():
        entry = base.ledger.get_file(item.key)
        if entry is None or entry.version != item.version or not is_waiting(entry):
            ports.notes.forget_waiting(item.key)
            forgotten += 1
            continue
        assert entry.version is not None
        notes = [
            n
            for n in ports.notes.sidecar_notes(subjects_of(item.key))
            if confirms(n, item.key, item.wait_for)
        ]
        stale = entry.reason == RELEASING and (entry.updated_at or 0) < now - ports.release_lease
        if notes and (entry.reason != RELEASING or stale):
            outcome = _release(gate, entry, notes[0], stale_before=now - ports.release_lease)
            released += outcome.outcome == "QUEUED"
            continue
        if now >= item.deadline and entry.reason != RELEASING:
            feed_timeout = item.deadline - item.since
            reason = timeout_reason(item.wait_for, feed_timeout, item.key)
            if ports.notes.fail_file(item.key, entry.version, reason, ingestion=entry.ingestion):
                timed_out += 1
                log.warning("waiting file timed out", extra={"key": item.key, "reason": reason})
            ports.notes.forget_waiting(item.key)
            continue
        waiting += 1
    return SweepReport(waiting, timed_out, released, forgotten)
