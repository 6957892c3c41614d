"""Recovery for operators: re-queue the chunks of a file that were never counted, and move
dead-lettered chunk messages back to the queue once their cause is fixed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ingest.adapters import S3Store, SqsQueue
from ingest.errors import InvalidEventError, PermanentError
from ingest.fanout import plan_file
from ingest.feeds import FeedSet
from ingest.ledger import FileStatus, Ledger
from ingest.messages import ChunkMessage

log = logging.getLogger(__name__)

REQUEUEABLE = frozenset(
    {FileStatus.FAILED, FileStatus.RECEIVED, FileStatus.QUEUED, FileStatus.PROCESSING}
)


class NotRequeueableError(PermanentError):
    """The file is not in a state, or not of a shape, that re-queueing can help."""


@dataclass(frozen=True)
class RequeueResult:
    key: str
    chunks: int
    requeued: list[int]


def requeue_file(
    key: str,
    *,
    bucket: str,
    feeds: FeedSet,
    store: S3Store,
    queue: SqsQueue,
    ledger: Ledger,
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
        ledger.finish_if_complete(key, entry.version, entry.ingestion)
    log.info("re-queued chunks", extra={"key": key, "chunks": missing})
    return RequeueResult(key=key, chunks=len(plan.chunks), requeued=missing)


def redrive_dead_letters(
    sqs: Any,
    *,
    dlq_url: str,
    queue_url: str,
    limit: int | None = None,
    ledger: Ledger | None = None,
) -> int:
    """Move messages from the DLQ back to the queue (send first, then delete).

    With ``ledger``, each redriven chunk's FAILED file goes back to QUEUED with a reason that
    says it is being retried (and what failed before), rather than showing the old failure.
    """
    moved = 0
    target = SqsQueue(sqs, queue_url)
    while limit is None or moved < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10 if limit is None else max(1, min(10, limit - moved)),
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
        ).get("Messages", [])
        if not batch:
            break
        target.send_raw([m["Body"] for m in batch])
        if ledger is not None:
            _mark_retrying(ledger, [m["Body"] for m in batch])
        sqs.delete_message_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
        moved += len(batch)
    return moved


def _mark_retrying(ledger: Ledger, bodies: list[str]) -> None:
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
