"""The content gate: a file whose bytes were already processed (feed ``duplicates``).

With ``duplicates: skip`` or ``fail``, a file whose content digest equals that of a file
already taken for the same feed and partner within ``duplicate_window`` is not ingested: it
is ``DUPLICATE`` with the earlier key (``skip``) or ``FAILED`` with that reason (``fail``).
A re-upload of the same bytes under the same key is a duplicate before any gate (same ETag).

The digest is S3's own full-object checksum when the object has one (SHA-256, CRC64NVME:
:meth:`~ingest.usecases.ports.ContentDigests.stored`), else a SHA-256 streamed from the object;
it is recorded on the file's entry either way. The first file of a content owns its index
item (a conditional put), so of two identical files landing at once exactly one is ingested.
An earlier owner that failed, or whose key now holds other bytes, gives the content up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from msgspec import Struct

from ingest.domain.digests import SHA256, Digest
from ingest.domain.feed_types import Duplicates
from ingest.domain.files import FileEntry, FileStatus
from ingest.usecases.planning import FilePlan, GateOutcome
from ingest.usecases.ports import ContentDigests, DigestLedger, FileLedger

log = logging.getLogger(__name__)

#: How often a claim that lost to a stale owner (failed, replaced) tries again.
_TAKEOVERS = 3


class DuplicatePorts(Struct, frozen=True):
    index: DigestLedger
    digests: ContentDigests
    ledger: FileLedger
    clock: Callable[[], float] = time.time


def content_digest(plan: FilePlan, digests: ContentDigests) -> Digest:
    """S3's full-object checksum of the version, else its streamed SHA-256."""
    stored = digests.stored(plan.bucket, plan.key, version_id=plan.info.version_id)
    if stored is not None:
        return stored
    value = digests.streamed(
        plan.bucket, plan.key, version_id=plan.info.version_id, algorithm=SHA256
    )
    return Digest(SHA256, value)


def check_duplicate(plan: FilePlan, ingestion: str, ports: DuplicatePorts) -> GateOutcome | None:
    """None lets the file through (it owns its content now); else DUPLICATE or FAILED."""
    feed = plan.match.feed
    if feed.duplicates is Duplicates.ALLOW:
        return None
    partner = plan.match.captures.get("partner") or _partner(plan.key)
    digest = content_digest(plan, ports.digests)
    ports.index.record_digest(plan.key, plan.info.etag, digest)
    earlier = None
    for _ in range(_TAKEOVERS):
        now = ports.clock()
        earlier = ports.index.claim_digest(
            feed=feed.name,
            partner=partner,
            digest=digest,
            key=plan.key,
            version=plan.info.etag,
            expires_at=now + feed.duplicate_window,
            now=now,
        )
        if earlier is None:
            return None
        if _still_holds(ports.ledger.get_file(earlier), digest):
            break
        # the earlier file failed or now holds other bytes: its claim is not a delivery
        ports.index.release_digest(feed=feed.name, partner=partner, digest=digest, key=earlier)
    else:
        return None
    assert earlier is not None
    status = FileStatus.DUPLICATE if feed.duplicates is Duplicates.SKIP else FileStatus.FAILED
    reason = f"duplicate of {earlier}: the same content ({digest}) within the feed's window"
    ports.index.mark_duplicate(
        plan.key,
        plan.info.etag,
        ingestion,
        status=status,
        reason=reason,
        duplicate_of=earlier,
        digest=digest,
    )
    log.info("duplicate content", extra={"key": plan.key, "duplicate_of": earlier})
    return GateOutcome("DUPLICATE" if status is FileStatus.DUPLICATE else "FAILED", reason)


def _still_holds(entry: FileEntry | None, digest: Digest) -> bool:
    """Whether the earlier file's entry still is a delivery of this content."""
    if entry is None or entry.status == FileStatus.FAILED:
        return False
    return entry.digest in (None, str(digest))


def _partner(key: str) -> str:
    parts = key.split("/", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "inbound" else ""
