"""What the ledger and the landing bucket know of files, put for people: the files a filter
selects, newest first (``ingest status``), and a file's rejected rows (``ingest rejects``)."""

from __future__ import annotations

import datetime as dt
import heapq
import json
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any, Protocol

from msgspec import Struct, field

from ingest.domain.files import FileEntry, FileStatus
from ingest.domain.messages import ChunkMessage
from ingest.domain.rejects import rejects_prefix
from ingest.errors import ConfigError, InvalidEventError

_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d|w)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class FileFilter(Struct, frozen=True):
    """Which files to show: every given condition must hold (``statuses``: any of them)."""

    partner: str | None = None
    feed: str | None = None
    statuses: frozenset[str] = field(default_factory=frozenset)
    #: received (or, for entries without that time, last changed) at or after, epoch seconds
    since: float | None = None
    prefix: str = ""

    def matches(self, entry: FileEntry) -> bool:
        return (
            entry.key.startswith(self.prefix)
            and (self.partner is None or entry.partner == self.partner)
            and (self.feed is None or entry.feed == self.feed)
            and (not self.statuses or entry.status in self.statuses)
            and (self.since is None or (_when(entry) or 0.0) >= self.since)
        )


def newest_first(entries: Iterable[FileEntry], selected: FileFilter) -> list[FileEntry]:
    """The entries ``selected`` matches, the most recently received first (then by key)."""
    chosen = [e for e in entries if selected.matches(e)]
    chosen.sort(key=lambda e: e.key)
    chosen.sort(key=lambda e: _when(e) or 0.0, reverse=True)
    return chosen


def _when(entry: FileEntry) -> float | None:
    return entry.received_at if entry.received_at is not None else entry.updated_at


def parse_since(text: str, *, now: float) -> float:
    """``--since``: a duration back from ``now`` (``90m``, ``2h``, ``7d``, ``1w``, ``30s``) or
    an ISO 8601 date or time (UTC unless it says otherwise); epoch seconds."""
    text = text.strip()
    if match := _DURATION.fullmatch(text):
        return now - float(match["n"]) * _UNIT_SECONDS[match["unit"]]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: not a duration (30s, 90m, 2h, 7d, 1w) or an ISO 8601 date",
            field="since",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def iso_time(epoch: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC (``2026-12-01T13:45:00Z``), whole seconds."""
    if epoch is None:
        return None
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def age(epoch: float | None, *, now: float) -> str:
    """How long ago, in its largest whole unit: ``45s``, ``12m``, ``3h``, ``2d``."""
    if epoch is None:
        return ""
    seconds = max(0, int(now - epoch))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class RejectFiles(Protocol):
    """The landing bucket, as the reject reader uses it."""

    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...

    def open_range(
        self, bucket: str, key: str, *, version_id: str | None, start: int, etag: str | None
    ) -> IO[bytes]: ...


class Rejects(Struct, frozen=True):
    """A file's rejected rows (``{line, reason, raw}``, by line), and where they are kept."""

    files: list[str]
    rows: list[dict[str, Any]]
    #: more rows than ``limit`` were there
    truncated: bool


def read_rejects(store: RejectFiles, bucket: str, key: str, *, limit: int | None) -> Rejects:
    """The first ``limit`` rejected rows of ``key`` (every one when None), by line.

    Chunks are byte ranges in file order, so each reject file's lines come after the
    previous one's; within one file the rows are not quite in order (writer threads add
    rejects too), so each file is read as a stream and only its first rows are kept.
    """
    files = sorted(store.list_keys(bucket, rejects_prefix(key)))
    rows: list[dict[str, Any]] = []
    truncated = False
    for reject_file in files:
        wanted = None if limit is None else limit - len(rows)
        if wanted == 0:
            truncated = True
            break
        found = _reject_rows(store, bucket, reject_file)
        if wanted is None:
            rows.extend(sorted(found, key=_line))
            continue
        counted = _Counted(found)
        rows.extend(heapq.nsmallest(wanted, counted, key=_line))
        truncated = truncated or counted.seen > wanted
    return Rejects(files=[f"s3://{bucket}/{k}" for k in files], rows=rows, truncated=truncated)


def _line(row: dict[str, Any]) -> int:
    return int(row.get("line", 0))


class _Counted:
    """An iterator that counts what went through it."""

    def __init__(self, items: Iterator[dict[str, Any]]) -> None:
        self._items = items
        self.seen = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self._items:
            self.seen += 1
            yield item


def _reject_rows(store: RejectFiles, bucket: str, key: str) -> Iterator[dict[str, Any]]:
    with store.open_range(bucket, key, version_id=None, start=0, etag=None) as stream:
        for line in stream:
            if line.strip():
                yield json.loads(line)


class PeekedLetter(Protocol):
    """A message looked at in the dead-letter queue (``ingest.adapters.sqs.DeadLetter``)."""

    @property
    def body(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def receive_count(self) -> int: ...

    @property
    def first_received_at(self) -> float | None: ...


class DeadLetterInfo(Struct, frozen=True):
    """One DLQ message, for people: which chunk of which file, how often it was tried, when,
    and the error the ledger holds for its file (``ingest dlq list``)."""

    message_id: str
    key: str | None
    chunk: int | None
    version: str | None
    receive_count: int
    first_failure_at: float | None
    #: when the file was marked FAILED (its last delivery failed)
    last_failure_at: float | None
    last_error: str | None


def dead_letter_report(letters: Iterable[PeekedLetter], ledger: FileReader) -> list[DeadLetterInfo]:
    """What each DLQ message is, by file and chunk."""
    entries: dict[str, FileEntry | None] = {}
    report: list[DeadLetterInfo] = []
    for letter in letters:
        try:
            msg = ChunkMessage.from_json(letter.body)
        except InvalidEventError:
            report.append(
                DeadLetterInfo(
                    letter.message_id,
                    None,
                    None,
                    None,
                    letter.receive_count,
                    letter.first_received_at,
                    None,
                    "not a chunk message",
                )
            )
            continue
        if msg.key not in entries:
            entries[msg.key] = ledger.get_file(msg.key)
        entry = entries[msg.key]
        failed = entry if entry is not None and entry.status == FileStatus.FAILED else None
        report.append(
            DeadLetterInfo(
                message_id=letter.message_id,
                key=msg.key,
                chunk=msg.index,
                version=msg.version,
                receive_count=letter.receive_count,
                first_failure_at=letter.first_received_at,
                last_failure_at=failed.updated_at if failed else None,
                last_error=failed.reason if failed else None,
            )
        )
    report.sort(key=lambda d: (d.key or "", d.chunk or 0))
    return report


class FileReader(Protocol):
    """The ledger, as the inspection reads it."""

    def get_file(self, key: str) -> FileEntry | None: ...


def chunk_states(entry: FileEntry, *, done: set[int], writing: set[int]) -> list[dict[str, Any]]:
    """Each chunk of the file's current ingestion: ``done`` (counted), ``writing`` (a live
    lease), ``failed`` (the file failed, and it was not counted) or ``waiting``."""
    states = []
    for index in range(entry.chunks):
        if index in done:
            state = "done"
        elif index in writing:
            state = "writing"
        elif entry.status == FileStatus.FAILED:
            state = "failed"
        else:
            state = "waiting"
        states.append({"index": index, "state": state})
    return states


_SOURCE_FIELDS = ("connector_id", "transfer_id", "url", "remote_path", "completed_at", "bytes")


def transfer_sources(links: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transfers that brought a file (plain values of its SOURCE# items), oldest first:
    ``{connector_id, transfer_id, url, remote_path, completed_at, bytes}``."""
    found = [{name: link.get(name) for name in _SOURCE_FIELDS} for link in links]
    for source in found:
        if source["bytes"] is not None:
            source["bytes"] = int(source["bytes"])
    found.sort(key=lambda s: (s["completed_at"] or "", s["transfer_id"] or ""))
    return found
