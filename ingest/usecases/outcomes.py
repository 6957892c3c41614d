"""A file's final status, told: its receipt where its partner fetches it, and an event on the bus.

The ledger's stream hands every change of a file entry here (``old`` and ``new``). Only a
change *into* a final status counts: a new status, or the same one reached by another version
or ingestion of the key. Then, in this order, each step safe to repeat (the stream delivers at
least once, and a failed batch is tried again from the failed record):

1. the receipt of that version, at ``receipts/<partner>/.history/<path>.<etag>.<fmt>``;
2. the same receipt at the plain name ``receipts/<partner>/<path>.<fmt>``, unless the ledger's
   entry is already another version (whose own change writes the plain name);
3. the event (:func:`ingest.domain.notifications.file_event`), its ``event-id`` the same for
   every copy.

A receipt is built only from the entry and the file's reject files, so writing it again
writes the same bytes. Keys outside ``inbound/<partner>/`` get an event and no receipt.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import IO, Protocol

from msgspec import Struct

from ingest.domain.feed_types import FeedSet, ReceiptOptions
from ingest.domain.files import FileEntry
from ingest.domain.notifications import FINAL_STATUSES, BusEvent, file_event
from ingest.domain.receipts import (
    CONTENT_TYPES,
    MAX_REJECTS,
    history_key,
    receipt_document,
    receipt_key,
    render_receipt,
)
from ingest.errors import ConfigError
from ingest.usecases.inspection import RejectFiles, iso_time, read_rejects

log = logging.getLogger(__name__)


class ReceiptStore(RejectFiles, Protocol):
    """The landing bucket: reject files read, receipts written."""

    def put_file(self, bucket: str, key: str, body: IO[bytes], content_type: str) -> None: ...


class CurrentEntries(Protocol):
    """The ledger, asked which version of a key is the current one."""

    def get_file(self, key: str) -> FileEntry | None: ...


class Bus(Protocol):
    """Where the events go (an EventBridge bus)."""

    def publish(self, events: Iterable[BusEvent]) -> None: ...


class OutcomePorts(Struct, frozen=True):
    feeds: Callable[[], FeedSet]
    store: ReceiptStore
    ledger: CurrentEntries
    bus: Bus
    bucket: str


class Told(Struct, frozen=True):
    """What telling one outcome did."""

    key: str
    status: str
    #: the receipt objects written (history first, then the plain name if it was written)
    receipts: tuple[str, ...]
    events: int


def reached_final(old: FileEntry | None, new: FileEntry | None) -> bool:
    """Whether the change from ``old`` to ``new`` is a file reaching a final status.

    The same status again counts when another version or ingestion reached it, or when the
    file was received again (fanout records an UNMATCHED key anew for each event of it): the
    receipt is then rewritten to say so, and the event, with the same ``event-id``, is a copy.
    """
    if new is None or new.status not in FINAL_STATUSES:
        return False
    if old is None:
        return True
    return _outcome(old) != _outcome(new)


def _outcome(entry: FileEntry) -> tuple[object, ...]:
    return (entry.status, entry.version, entry.ingestion, entry.received_at)


def tell_outcome(old: FileEntry | None, new: FileEntry | None, ports: OutcomePorts) -> Told | None:
    """The receipt and the event of a file that reached a final status (None: no such change)."""
    if not reached_final(old, new):
        return None
    assert new is not None
    options = _receipt_options(ports.feeds, new.feed)
    written: list[str] = []
    plain = receipt_key(new.key, options.format)
    if plain is not None:
        current = ports.ledger.get_file(new.key)
        is_current = current is None or (current.version, current.ingestion) == (
            new.version,
            new.ingestion,
        )
        body = _receipt(new, ports, options, rejects_readable=is_current)
        history = history_key(new.key, new.etag or new.version or "", options.format)
        targets = [history] + ([plain] if is_current else [])
        for key in targets:
            assert key is not None
            ports.store.put_file(ports.bucket, key, io.BytesIO(body), CONTENT_TYPES[options.format])
            written.append(key)
    event = file_event(new, bucket=ports.bucket, receipt=plain)
    ports.bus.publish([event])
    log.info(
        "outcome told",
        extra={"key": new.key, "status": new.status, "receipts": written},
    )
    return Told(key=new.key, status=new.status, receipts=tuple(written), events=1)


def _receipt_options(feeds: Callable[[], FeedSet], feed: str | None) -> ReceiptOptions:
    """The feed's ``receipt:`` options; the defaults for files of no (or a removed) feed."""
    if feed is None:
        return ReceiptOptions()
    try:
        return feeds().get(feed).receipt
    except ConfigError as exc:  # a receipt in the default form beats none
        log.warning(
            "receipt options unknown: the defaults apply", extra={"feed": feed, "error": str(exc)}
        )
        return ReceiptOptions()


def _receipt(
    entry: FileEntry, ports: OutcomePorts, options: ReceiptOptions, *, rejects_readable: bool
) -> bytes:
    if entry.rows_rejected and rejects_readable:
        found = read_rejects(ports.store, ports.bucket, entry.key, limit=MAX_REJECTS)
        rejects, truncated = found.rows, found.truncated
    else:
        # A newer version replaced this one and cleared its reject files: the count stays.
        rejects, truncated = [], bool(entry.rows_rejected)
    document = receipt_document(
        entry,
        received_at=iso_time(entry.received_at),
        finished_at=iso_time(entry.updated_at),
        rejects=rejects,
        truncated=truncated,
        include_raw=options.include_raw,
    )
    return render_receipt(document, options.format, include_raw=options.include_raw)
