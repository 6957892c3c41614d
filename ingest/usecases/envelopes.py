"""The envelope use case: a landed zip archive or PGP file opened next to itself.

Fanout hands every landed object to :func:`open_envelope` first (``FanoutPorts.envelopes``).
For an envelope (by suffix, :func:`ingest.domain.envelopes.envelope_kind`) it

1. registers the version in the ledger like any file (``RECEIVED``; a Transfer Family upload is
   held there until the server confirms it, as fanout holds other uploads);
2. opens it with its kind's step, which writes every output next to the envelope or none;
3. records the step: the envelope's entry becomes the step's status (``EXPANDED``,
   ``DECRYPTED``) with its outputs, and each output is linked back to it. A refused envelope
   is ``FAILED`` with the reason.

The outputs are ingested by their own S3 events, like any upload: they are written by the
function's own role, so fanout never holds them. A repeated event of a version that is past
``RECEIVED`` does nothing (``DUPLICATE``); one that finds it still ``RECEIVED`` (the function
died mid-way) opens it again, and outputs that were already written come back with the same
bytes and the same ETag, which fanout takes as duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from msgspec import Struct

from ingest.domain.envelopes import EnvelopeKind, EnvelopeSource, envelope_feed, envelope_kind
from ingest.domain.events import LandedObject, ObjectInfo
from ingest.domain.feed_types import FeedSet
from ingest.domain.files import HELD_REASON, FileStatus
from ingest.errors import PermanentError
from ingest.usecases.ports import EnvelopeRecords, EnvelopeStep, FileLedger, ObjectStore

log = logging.getLogger(__name__)


class EnvelopeOutcome(Struct, frozen=True):
    """What became of an envelope: ``status`` is a fanout outcome (EXPANDED, FAILED,
    DUPLICATE, HELD)."""

    key: str
    status: str
    feed: str | None
    size: int
    outputs: int = 0
    reason: str | None = None


class EnvelopePorts(Struct, frozen=True):
    feeds: Callable[[], FeedSet]
    store: ObjectStore
    ledger: FileLedger
    records: EnvelopeRecords
    steps: Mapping[EnvelopeKind, EnvelopeStep]
    holds_upload: Callable[[LandedObject], bool] = lambda _: False


def open_envelope(obj: LandedObject, ports: EnvelopePorts) -> EnvelopeOutcome | None:
    """Open ``obj`` if it is an envelope whose step is wired; None: not an envelope."""
    kind = envelope_kind(obj.key)
    step = ports.steps.get(kind) if kind is not None else None
    if kind is None or step is None:
        return None
    key = obj.key
    feed = envelope_feed(ports.feeds(), key)
    feed_name = feed.name if feed is not None else None
    info = _describe(obj, ports.store)
    held = not obj.upload_confirmed and ports.holds_upload(obj)
    ingestion = ports.ledger.start_file(
        key=key,
        feed=feed_name,
        version=info.etag,
        etag=info.etag,
        size=info.size,
        chunks=0,
        version_id=info.version_id,
        reason=HELD_REASON if held else None,
    )
    if not ingestion:
        log.info("duplicate event for an envelope already opened", extra={"key": key})
        return EnvelopeOutcome(key, "DUPLICATE", feed_name, info.size)
    if held:
        log.info("holding SFTP upload until the server confirms it", extra={"key": key})
        return EnvelopeOutcome(key, "HELD", feed_name, info.size)
    source = EnvelopeSource(obj.bucket, key, info.size, info.etag, info.version_id)
    try:
        outputs = step.open(source, feed)
    except PermanentError as exc:
        reason = str(exc)
        ports.ledger.mark_failed(key, info.etag, reason, ingestion)
        log.warning("envelope refused", extra={"key": key, "reason": reason})
        return EnvelopeOutcome(key, FileStatus.FAILED, feed_name, info.size, reason=reason)
    ports.records.record_outputs(key, info.etag, ingestion, kind, outputs)
    log.info(
        "opened envelope",
        extra={"key": key, "step": kind.value, "outputs": len(outputs), "feed": feed_name},
    )
    return EnvelopeOutcome(key, kind.value, feed_name, info.size, outputs=len(outputs))


def _describe(obj: LandedObject, store: ObjectStore) -> ObjectInfo:
    if obj.size is not None and obj.etag:
        return ObjectInfo(size=obj.size, etag=obj.etag, version_id=obj.version_id)
    return store.head(obj.bucket, obj.key, obj.version_id)
