"""Recovery for operators: re-queue the chunks of a file that were never counted, and move
dead-lettered chunk messages back to the queue once their cause is fixed."""

from __future__ import annotations

import logging
import time
from typing import Any

from msgspec import Struct

from ingest.domain.feed_types import FeedSet
from ingest.domain.files import FileStatus
from ingest.domain.fixed_width import finish_check
from ingest.domain.messages import ChunkMessage
from ingest.errors import InvalidEventError, PermanentError, RetryableError
from ingest.usecases.planning import plan_file
from ingest.usecases.ports import DeadLetters, FileLedger, MessageSender, ObjectStore

log = logging.getLogger(__name__)

REQUEUEABLE = frozenset(
    {FileStatus.FAILED, FileStatus.RECEIVED, FileStatus.QUEUED, FileStatus.PROCESSING}
)


class NotRequeueableError(PermanentError):
    """The file is not in a state, or not of a shape, that re-queueing can help."""


class RedriveStuckError(RetryableError):
    """The dead-letter queue keeps counting messages that no receive returns."""


#: Receives in a row that may come back empty while the DLQ still counts messages.
_MAX_EMPTY_RECEIVES = 10


class RequeueResult(Struct, frozen=True):
    key: str
    chunks: int
    requeued: list[int]


def requeue_file(
    key: str,
    *,
    bucket: str,
    feeds: FeedSet,
    store: ObjectStore,
    queue: MessageSender,
    ledger: FileLedger,
) -> RequeueResult:
    """Send again the chunk messages of ``key`` whose chunks the ledger has not counted.

    Counted chunks are never re-sent (and would not be counted twice if they were). The plan
    is rebuilt with the chunk size recorded at fanout, so indices and ranges are the same.
    """
    entry = ledger.get_file(key)
    if entry is None:
        raise NotRequeueableError(f"{key}: no ledger entry")
    if entry.status not in REQUEUEABLE or not entry.version or not entry.chunk_size:
        raise NotRequeueableError(f"{key}: status {entry.status} cannot be re-queued")
    match = feeds.resolve(key)
    if match is None:
        raise NotRequeueableError(f"{key}: no feed owns this key any more")
    info = store.head(bucket, key, entry.version_id)
    if info.etag != entry.version:
        raise NotRequeueableError(f"{key}: the object changed since it was planned")
    plan = plan_file(bucket, key, info, match=match, store=store, chunk_size=entry.chunk_size)
    done = ledger.done_chunks(key, entry.version, entry.ingestion)
    missing = [c.index for c in plan.chunks if c.index not in done]
    if missing:
        queue.send_all(plan.messages(ingestion=entry.ingestion, only=set(missing)))
        ledger.mark_requeued(key, entry.version, entry.ingestion)
    else:
        ledger.finish_if_complete(
            key, entry.version, entry.ingestion, verify=finish_check(match.feed)
        )
    log.info("re-queued chunks", extra={"key": key, "chunks": missing})
    return RequeueResult(key=key, chunks=len(plan.chunks), requeued=missing)


def redrive_dead_letters(
    dlq: DeadLetters,
    *,
    ledger: FileLedger | None = None,
    limit: int | None = None,
    key: str | None = None,
) -> int:
    """Move messages from the DLQ back to the ingest queue until it is empty (or ``limit``);
    with ``key``, only that file's chunk messages (the others stay in the DLQ).

    An empty receive does not end the redrive while the DLQ still counts messages (a short
    poll can miss some). With ``ledger``, each redriven chunk's FAILED file goes back to
    QUEUED first, with a reason that says it is being retried and what had failed, so that it
    never shows the old failure while it is in fact being retried.
    """
    moved = 0
    misses = 0
    kept: list[Any] = []  # other files' messages, hidden until the end so none is read twice
    try:
        while limit is None or moved < limit:
            batch = dlq.take(10 if limit is None else min(10, limit - moved))
            if not batch:
                remaining = dlq.remaining()
                if remaining == 0:
                    break
                misses += 1
                if misses > _MAX_EMPTY_RECEIVES:
                    raise RedriveStuckError(
                        f"the dead-letter queue counts {remaining} message(s) that could not be "
                        f"received in {misses} tries (in flight elsewhere?); run the redrive again"
                    )
                continue
            misses = 0
            if key is not None:
                kept.extend(letter for letter in batch if chunk_key(letter.body) != key)
                batch = [letter for letter in batch if chunk_key(letter.body) == key]
                if not batch:
                    continue
            if ledger is not None:
                _mark_retrying(ledger, [letter.body for letter in batch])
            dlq.return_to_queue(batch)
            moved += len(batch)
    finally:
        if kept:
            dlq.release(kept)
    return moved


def chunk_key(body: str) -> str | None:
    """The file a DLQ message is a chunk of (None when it is not a chunk message)."""
    try:
        return ChunkMessage.from_json(body).key
    except InvalidEventError:
        return None


def _mark_retrying(ledger: FileLedger, bodies: list[str]) -> None:
    files: dict[str, ChunkMessage] = {}
    for body in bodies:
        try:
            msg = ChunkMessage.from_json(body)
        except InvalidEventError:
            continue  # not a chunk message: nothing in the ledger to update
        files.setdefault(msg.key, msg)
    for key, msg in files.items():
        entry = ledger.get_file(key)
        if entry is None or entry.status != FileStatus.FAILED:
            continue
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ledger.mark_requeued(
            key,
            msg.version,
            msg.ingestion_id,
            reason=f"retrying: redriven from the DLQ at {when} (it had failed: {entry.reason})",
        )
