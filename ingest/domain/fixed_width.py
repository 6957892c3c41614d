"""Fixed-width lines → records: fields cut by column, header and trailer lines set aside,
record types filtered (and counted), mainframe numbers (signs, implied decimals) read.

A chunk owns the lines that start in its byte range (:mod:`ingest.domain.lines`). Header
lines are the file's first ``header_lines`` lines, known by their file-wide line numbers, so
only the chunks holding them skip them. Trailer lines are the file's last ``trailer_lines``
non-blank lines: a chunk holds its last ``trailer_lines`` lines back and looks at what follows
its range (``following``, at most that many lines). Whatever of the held lines has fewer than
``trailer_lines`` lines after it in the file is a trailer line. The chunk that holds the
file's last line reads the trailer's declared record count; the count is checked against the
file's records once every chunk is counted (:func:`trailer_problem`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from msgspec import Struct

from ingest.domain.feed_types import Feed, FieldSpec, FieldType
from ingest.domain.files import FileEntry
from ingest.domain.lines import ParsedRecord, RawLine, decode_line, lossy, strip_eol, too_long
from ingest.errors import RowError, TrailerError

_NUMERIC = (FieldType.INT, FieldType.DECIMAL)


class ChunkTally(Struct):
    """What a chunk saw besides its records: lines of other record types, and (in the chunk
    holding the file's last line) the record count the trailer declares."""

    skipped: int = 0
    declared: int | None = None


def mainframe_number(text: str, spec: FieldSpec) -> str | Decimal:
    """A zero-padded, possibly signed number (``-0000123``, ``0000123-``, ``+12``) in the form
    the field converters take; ``scale`` places the implied decimal point."""
    body, sign = text, ""
    if body[-1:] in ("+", "-"):
        body, sign = body[:-1].rstrip(" "), body[-1]
    elif body[:1] in ("+", "-"):
        body, sign = body[1:].lstrip(" "), body[0]
    if spec.scale:
        if not (body.isascii() and body.isdigit()):
            raise RowError(
                f"field {spec.name!r}: not a number of digits with {spec.scale} implied "
                f"decimals: {text!r}"
            )
        number = Decimal(body).scaleb(-spec.scale)
        return -number if sign == "-" and number else number
    return ("-" if sign == "-" else "") + body


class FixedWidthParser:
    """Fixed-width lines → records of the feed's fields (see the module's docstring)."""

    def __init__(self, feed: Feed, tally: ChunkTally) -> None:
        self._opts = feed.fixed_width
        self._fields = feed.fields
        self.encoding = feed.text_encoding
        self.max_size = feed.max_record_size
        self.tally = tally

    def records(
        self, lines: Iterator[RawLine], following: Iterator[RawLine]
    ) -> Iterator[ParsedRecord]:
        """The records of the lines a chunk owns; ``following`` are the lines after them."""
        keep = self._opts.trailer_lines
        held: deque[RawLine] = deque()
        for line in lines:
            if line.number <= self._opts.header_lines or not line.data.strip():
                continue  # a header line, or a blank line: not a record
            if not keep:
                yield from self._record(line)
                continue
            held.append(line)
            if len(held) > keep:
                yield from self._record(held.popleft())
        if not held:
            return
        after = 0
        for line in following:
            if line.data.strip():
                after += 1
                if after == keep:
                    break
        trailer = keep - after  # how many of the held lines are the file's trailer lines
        while len(held) > trailer:
            yield from self._record(held.popleft())
        if held and after == 0 and self._opts.trailer_count is not None:
            self.tally.declared = self._declared(held[-1])

    def _declared(self, line: RawLine) -> int:
        count = self._opts.trailer_count
        assert count is not None
        text = self._text(line)
        value = count.cut(text).strip(" ")
        body = value.lstrip("+")
        if not (body.isascii() and body.isdigit()):
            raise TrailerError(
                f"line {line.number}: the trailer's record count (columns {count.start}-"
                f"{count.start + count.width - 1}) is not a number: {value!r}"
            )
        return int(body)

    def _text(self, line: RawLine) -> str:
        return strip_eol(decode_line(line.data, self.encoding, at_file_start=line.number == 1))

    def _record(self, line: RawLine) -> Iterator[ParsedRecord]:
        if (reject := too_long(line, self.max_size)) is not None:
            yield reject
            return
        try:
            text = self._text(line)
        except RowError as exc:
            yield ParsedRecord(line=line.number, raw=lossy(line.data), error=exc.reason)
            return
        kind = self._opts.record_type
        if kind is not None and kind.cut(text).strip(" ") != self._opts.record_value.strip(" "):
            self.tally.skipped += 1
            return
        values: dict[str, Any] = {}
        try:
            for spec in self._fields:
                value = text[spec.start - 1 : spec.start - 1 + spec.width].strip(" ")
                if value and spec.type in _NUMERIC:
                    values[spec.source] = mainframe_number(value, spec)
                else:
                    values[spec.source] = value
        except RowError as exc:
            yield ParsedRecord(line=line.number, raw=text, error=exc.reason)
            return
        yield ParsedRecord(line=line.number, raw=text, values=values)


def trailer_problem(feed: Feed, *, declared: int | None, records: int) -> str | None:
    """Why a finished fixed-width file fails its trailer check (None: it passes, or the feed
    declares no trailer count). ``records`` are its records read: written or rejected."""
    count = feed.fixed_width.trailer_count
    if count is None:
        return None
    if declared is None:
        return "the file has no trailer record to declare its record count (a truncated delivery?)"
    if declared != records:
        return (
            f"the trailer declares {declared} records but {records} were read "
            "(a truncated or padded delivery)"
        )
    return None


def finish_check(feed: Feed) -> Callable[[FileEntry], str | None] | None:
    """The check of a complete file's entry that the ledger runs as it finishes the file (the
    trailer count against every chunk's records), or None when the feed has none."""
    if feed.fixed_width.trailer_count is None:
        return None

    def check(entry: FileEntry) -> str | None:
        records = entry.rows_ok + entry.rows_rejected
        return trailer_problem(feed, declared=entry.declared_records, records=records)

    return check
