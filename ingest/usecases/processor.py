"""The processor use case: one chunk message → records in DynamoDB, rejects in S3, counters.

Ordering makes a chunk safe to replay after a crash or a duplicate delivery: record items have
deterministic keys (a replay rewrites the same items), the reject file has a deterministic
name (a replay overwrites it), and the ledger counters are added last, once, in a transaction
guarded by the chunk's marker item.
"""

from __future__ import annotations

import gzip
import json
import logging
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import IO, Any

from msgspec import Struct

from ingest.domain.csv_records import CsvParser
from ingest.domain.feed_types import Feed, FeedMatch, FeedSet, Format
from ingest.domain.files import FileEntry, FileStatus
from ingest.domain.fixed_width import ChunkTally, finish_check
from ingest.domain.formats import parse_records
from ingest.domain.inflate import InflateLimits, open_gzip
from ingest.domain.lines import ParsedRecord, RawLine, iter_lines
from ingest.domain.messages import ChunkMessage
from ingest.domain.records import RecordRow, build_item
from ingest.domain.rejects import rejects_key
from ingest.domain.xlsx_records import xlsx_records
from ingest.errors import (
    CorruptInputError,
    PermanentError,
    RowError,
    StaleVersionError,
)
from ingest.usecases.fencing import VersionFence
from ingest.usecases.ports import (
    ChunkLeases,
    FileLedger,
    ObjectStore,
    RecordWriter,
    Redelivery,
    WriteFence,
)
from ingest.usecases.workbooks import spool_object

log = logging.getLogger(__name__)

HEADER_READ_LIMIT = 64 * 1024
_SPOOL_LIMIT = 8 * 1024 * 1024
#: A reject keeps at most this many characters of its record's text (``raw_truncated``).
MAX_REJECT_RAW = 16 * 1024


class ProcessorPorts(Struct, frozen=True):
    """What the processor talks to; ``feeds`` is called per chunk so a cache may refresh."""

    feeds: Callable[[], FeedSet]
    store: ObjectStore
    sink: RecordWriter
    ledger: FileLedger
    #: the chunk leases that let a newer version of a file always win (ingest.usecases.fencing)
    leases: ChunkLeases
    #: brings a failed message back after a backoff (None: the queue's visibility timeout)
    redelivery: Redelivery | None = None


class ChunkResult(Struct, frozen=True):
    key: str
    index: int
    rows_ok: int
    rows_rejected: int
    #: False when this chunk had already been counted (a redelivery)
    counted: bool
    #: the file's entry once its last chunk is done
    finished: FileEntry | None

    @property
    def finished_file(self) -> bool:
        """This chunk completed its file (a redelivery of a counted chunk does not)."""
        return self.counted and self.finished is not None and not self.failed_file

    @property
    def failed_file(self) -> bool:
        """This chunk completed its file, and the file as a whole failed its check (a
        fixed-width trailer's count)."""
        return (
            self.counted and self.finished is not None and self.finished.status == FileStatus.FAILED
        )


class RejectFile:
    """Reject lines ``{line, reason, raw}``, spooled to disk past a few MiB."""

    def __init__(self) -> None:
        # closed by close(), which process_chunk registers on its ExitStack
        self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_LIMIT, mode="w+b")  # noqa: SIM115
        self._lock = threading.Lock()  # the record sink's writer threads add rejects too
        self.count = 0

    def add(self, line: int, reason: str, raw: str) -> None:
        record: dict[str, Any] = {"line": line, "reason": reason, "raw": raw[:MAX_REJECT_RAW]}
        if len(raw) > MAX_REJECT_RAW:
            record["raw_truncated"] = True
        line_bytes = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
        with self._lock:
            self._file.write(line_bytes)
            self.count += 1

    def upload(self, store: ObjectStore, bucket: str, key: str) -> None:
        self._file.seek(0)
        store.put_file(bucket, key, self._file, "application/x-ndjson")

    def close(self) -> None:
        self._file.close()


def _guard_corruption(lines: Iterator[RawLine], key: str) -> Iterator[RawLine]:
    """Translate a broken gzip stream into a permanent, clearly worded error."""
    try:
        yield from lines
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CorruptInputError(f"cannot decompress gzip: {exc}", key=key) from exc


def _read_header(store: ObjectStore, msg: ChunkMessage, feed: Feed) -> list[str] | None:
    """A CSV header for a chunk that does not start at byte 0."""
    if feed.format is not Format.CSV or not feed.csv.header or msg.start == 0:
        return None
    # A bounded read: an open-ended GET would stream (or, on some S3 emulators, load) the
    # whole object just for its first line.
    with store.open_range(
        msg.bucket,
        msg.key,
        version_id=msg.version_id,
        start=0,
        etag=msg.version,
        end=HEADER_READ_LIMIT,
    ) as stream:
        first = stream.readline()
    if not first.endswith(b"\n"):  # a header longer than the bounded read
        with store.open_range(
            msg.bucket, msg.key, version_id=msg.version_id, start=0, etag=msg.version
        ) as stream:
            first = stream.readline()
    return CsvParser(feed, None).parse_header(RawLine(number=1, data=first))


def _records(
    store: ObjectStore, msg: ChunkMessage, feed: Feed, stack: ExitStack, tally: ChunkTally
) -> Iterator[ParsedRecord]:
    if feed.format is Format.XLSX:
        return xlsx_records(feed, spool_object(store, msg, stack), key=msg.key)
    header = _read_header(store, msg, feed)
    stream: IO[bytes] = stack.enter_context(
        store.open_range(
            msg.bucket,
            msg.key,
            version_id=msg.version_id,
            start=max(msg.start - 1, 0),
            etag=msg.version,
        )
    )
    if msg.compressed:
        limits = InflateLimits(
            max_size=feed.max_decompressed_size, max_ratio=feed.max_compression_ratio
        )
        stream = stack.enter_context(open_gzip(stream, key=msg.key, limits=limits))
    # A single-chunk file is read to its end, whatever its size was when planned.
    end = None if msg.chunks == 1 else msg.end
    lines = iter_lines(
        stream,
        start=msg.start,
        end=end,
        first_line=msg.first_line,
        max_size=feed.max_record_size,
    )
    # What follows the range: a fixed-width chunk looks at it for the file's trailer lines.
    following = iter_lines(stream, start=0, end=None, first_line=0, max_size=feed.max_record_size)
    if msg.compressed:
        lines = _guard_corruption(lines, msg.key)
        following = _guard_corruption(following, msg.key)
    return parse_records(
        feed,
        lines,
        owns_file_start=msg.start == 0,
        header=header,
        following=following,
        tally=tally,
    )


def process_chunk(msg: ChunkMessage, ports: ProcessorPorts) -> ChunkResult:
    """Parse, validate and write one chunk; count it in the ledger exactly once.

    A chunk of a file version the ledger no longer tracks (the key was replaced by a newer
    upload) is dropped without writing, so old data never overwrites newer records.
    """
    try:
        return _process_current_chunk(msg, ports)
    except StaleVersionError as exc:
        log.warning(
            "dropping a chunk of a superseded file", extra={"key": msg.key, "why": str(exc)}
        )
        return ChunkResult(
            key=msg.key, index=msg.index, rows_ok=0, rows_rejected=0, counted=False, finished=None
        )


def _process_current_chunk(msg: ChunkMessage, ports: ProcessorPorts) -> ChunkResult:
    match = _current_feed(msg, ports)
    with VersionFence(msg, ports.ledger, ports.leases) as fence:
        ports.ledger.mark_processing(msg.key, msg.version, msg.ingestion_id)
        tally = ChunkTally()
        rows_ok, rows_rejected = _write_chunk(msg, match, ports, fence, tally)
    counted = ports.ledger.complete_chunk(
        msg.key,
        msg.version,
        msg.index,
        rows_ok=rows_ok,
        rows_rejected=rows_rejected,
        ingestion=msg.ingestion_id,
        skipped=tally.skipped,
        declared=tally.declared,
    )
    finished = ports.ledger.finish_if_complete(
        msg.key, msg.version, msg.ingestion_id, verify=finish_check(match.feed)
    )
    log.info(
        "chunk done",
        extra={
            "key": msg.key,
            "chunk": msg.index,
            "rows_ok": rows_ok,
            "rows_rejected": rows_rejected,
            "records_skipped": tally.skipped,
            "redelivery": not counted,
        },
    )
    return ChunkResult(
        key=msg.key,
        index=msg.index,
        rows_ok=rows_ok,
        rows_rejected=rows_rejected,
        counted=counted,
        finished=finished,
    )


def _current_feed(msg: ChunkMessage, ports: ProcessorPorts) -> FeedMatch:
    """The chunk's feed, once the ledger confirms the chunk is of the current ingestion."""
    entry = ports.ledger.get_file(msg.key)
    ingestion = msg.ingestion_id
    if entry is None or (entry.version, entry.ingestion) != (msg.version, ingestion):
        raise StaleVersionError(
            f"{msg.key}: the ledger tracks "
            f"{f'{entry.version} (ingestion {entry.ingestion})' if entry else 'no version'}, "
            f"this chunk is of {msg.version} (ingestion {ingestion})"
        )
    match = ports.feeds().resolve(msg.key)
    if match is None or match.feed.name != msg.feed:
        raise PermanentError(f"{msg.key}: feed {msg.feed!r} no longer owns this key")
    return match


def _write_chunk(
    msg: ChunkMessage,
    match: FeedMatch,
    ports: ProcessorPorts,
    fence: WriteFence,
    tally: ChunkTally,
) -> tuple[int, int]:
    """Parse the chunk, write its good rows, upload its rejects: (rows written, rejected)."""
    rejects = RejectFile()
    with ExitStack() as stack:
        stack.callback(rejects.close)
        records = _records(ports.store, msg, match.feed, stack, tally)
        rows = _Rows(records, msg, match, rejects)
        try:
            rows_ok = ports.sink.write(rows, rejects.add, fence)
        except Exception as exc:
            # Items before the failure may already be in the table: say so in the reason.
            # A successful retry rewrites them (keys are deterministic) and counts them once.
            exc.add_note(f"stopped at line {rows.last_line}; rows before it may have been written")
            raise
        if rejects.count:
            fence.check()  # a newer version's fanout may have deleted this version's rejects
            rejects.upload(ports.store, msg.bucket, rejects_key(msg.key, msg.index))
    return rows_ok, rejects.count


class _Rows:
    """The chunk's records as items to write; the bad ones go to the reject file instead."""

    def __init__(
        self,
        records: Iterator[ParsedRecord],
        msg: ChunkMessage,
        match: FeedMatch,
        rejects: RejectFile,
    ) -> None:
        self._records = records
        self._msg = msg
        self._match = match
        self._rejects = rejects
        self.last_line = 0

    def __iter__(self) -> Iterator[RecordRow]:
        feed, captures = self._match.feed, self._match.captures
        for record in self._records:
            self.last_line = record.line
            if record.error is not None or record.values is None:
                self._rejects.add(record.line, record.error or "unparseable", record.raw)
                continue
            try:
                item = build_item(
                    feed,
                    record.values,
                    captures=captures,
                    source_uri=self._msg.source_uri,
                    line=record.line,
                )
            except RowError as exc:
                self._rejects.add(record.line, exc.reason, record.raw)
                continue
            yield RecordRow(record.line, record.raw, item)
