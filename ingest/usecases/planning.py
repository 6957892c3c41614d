"""A registered file version planned into record-aligned chunks, and its chunk messages queued.

Fanout plans and queues a file as it lands; the admission gates (:mod:`ingest.usecases.sidecars`)
queue a file they held once it is released. Both go through these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from typing import Any

from msgspec import Struct

from ingest.domain.chunks import DEFAULT_CHUNK_SIZE, Chunk, plan_chunks
from ingest.domain.events import LandedObject, ObjectInfo
from ingest.domain.feed_types import FeedMatch, FeedSet
from ingest.domain.messages import ChunkMessage
from ingest.usecases.ports import FileLedger, MessageSender, ObjectStore


class QueuePorts(Struct, frozen=True):
    """What planning and queueing a file talk to."""

    feeds: Callable[[], FeedSet]
    store: ObjectStore
    queue: MessageSender
    ledger: FileLedger
    default_chunk_size: int = DEFAULT_CHUNK_SIZE


class FilePlan(Struct, frozen=True):
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


def queue_plan(plan: FilePlan, ingestion: str, ports: QueuePorts) -> int:
    """Send every chunk message of this ingestion, then mark the file QUEUED; the chunk count."""
    ports.queue.send_all(plan.messages(ingestion=ingestion))
    ports.ledger.mark_queued(plan.key, plan.info.etag, ingestion)
    return len(plan.chunks)


def describe(obj: LandedObject, store: ObjectStore) -> ObjectInfo:
    """Size, ETag and version from the event when it has them all, else from S3."""
    if obj.size is not None and obj.etag:
        return ObjectInfo(size=obj.size, etag=obj.etag, version_id=obj.version_id)
    return store.head(obj.bucket, obj.key, obj.version_id)


class GateOutcome(Struct, frozen=True):
    """What an admission gate did with a file it did not let straight through: ``outcome`` is a
    fanout outcome (WAITING, FAILED, DUPLICATE, or QUEUED for a file it released and queued)."""

    outcome: str
    reason: str | None = None
    chunks: int = 0


#: A gate after this one (content duplicates): None lets the file through to be queued.
NextGate = Callable[[FilePlan, str], GateOutcome | None]


def no_gate(plan: FilePlan, ingestion: str) -> GateOutcome | None:
    """The gate that lets every file through."""
    return None
