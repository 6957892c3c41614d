"""Stream parsers: byte ranges of a landed file → raw records, in constant memory.

Records are read line by line from a binary stream. For a byte range ``[start, end)`` a chunk
owns exactly the records that *start* inside it (Hadoop's TextInputFormat rule): a reader that
begins after byte 0 skips the partial record it lands in, and the last record it owns may run
past ``end``. Files whose records may span lines (CSV with quoted newlines) and gzip files are
never split, so for them the range is always the whole file.

Memory stays bounded whatever the input: a line longer than the feed's ``max_record_size`` is
never held whole. Its first bytes are kept (for the reject's ``raw``) and the rest is skipped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from ingest.domain.feeds import DEFAULT_MAX_RECORD_SIZE, MAX_RECORD_SIZE_LIMIT, Feed, Format
from ingest.errors import HeaderError, RowError, UnreadableRecordsError

_BOM = b"\xef\xbb\xbf"
_UTF8_FAMILY = frozenset({"utf-8", "utf-8-sig"})
#: Bytes kept of a line longer than the limit: enough to recognise the record in a reject.
RAW_PREVIEW = 1024
#: How much of an over-long line is read at a time while it is skipped.
_SKIP_BLOCK = 1024 * 1024

# Records are bounded by the feed's max_record_size (checked here, per record); the csv
# module's own per-field limit (128 KiB by default) must not be the smaller one.
csv.field_size_limit(MAX_RECORD_SIZE_LIMIT)


@dataclass(frozen=True)
class RawLine:
    """One physical line and the 1-based line number it has in the whole file.

    ``dropped`` counts the bytes of an over-long line that were skipped, not kept in ``data``.
    """

    number: int
    data: bytes
    dropped: int = 0

    @property
    def size(self) -> int:
        """The line's length in the file, line ending included."""
        return len(self.data) + self.dropped


@dataclass(frozen=True)
class ParsedRecord:
    """A record as parsed from the file: its values, or the reason it is rejected."""

    line: int
    raw: str
    values: dict[str, Any] | None = None
    error: str | None = None


def _read_line(stream: IO[bytes], max_size: int) -> tuple[bytes, int, bool]:
    """The next line (at most ``max_size + 1`` bytes of it), how many more bytes of it were
    skipped, and whether it ended with a newline (rather than at the end of the stream)."""
    line = stream.readline(max_size + 1)
    if line.endswith(b"\n"):
        return line, 0, True
    dropped = 0
    if len(line) > max_size:
        while more := stream.readline(_SKIP_BLOCK):
            dropped += len(more)
            if more.endswith(b"\n"):
                return line, dropped, True
    return line, dropped, False


def iter_lines(
    stream: IO[bytes],
    *,
    start: int,
    end: int | None,
    first_line: int,
    max_size: int = DEFAULT_MAX_RECORD_SIZE,
) -> Iterator[RawLine]:
    """The lines of a stream positioned at ``max(start - 1, 0)`` whose first byte lies in
    ``[start, end)`` (``end=None``: to the end of the stream).

    ``first_line`` is the file-wide number of the first line this range owns. A line longer
    than ``max_size`` bytes keeps only its first ``max_size + 1`` bytes in memory; the rest is
    skipped and counted in ``RawLine.dropped``.
    """
    pos = start
    if start > 0:
        # We were positioned one byte early: if that byte is a newline the record at
        # ``start`` is ours; otherwise we are inside a record owned by the previous range.
        skipped, dropped, ended = _read_line(stream, max_size)
        if not ended:
            return
        pos = start - 1 + len(skipped) + dropped
    number = first_line
    while end is None or pos < end:
        line, dropped, _ = _read_line(stream, max_size)
        if not line:
            return
        yield RawLine(number=number, data=line, dropped=dropped)
        pos += len(line) + dropped
        number += 1


def decode_line(data: bytes, encoding: str, *, at_file_start: bool) -> str:
    """Decode one line, dropping a UTF-8 byte-order mark at the start of the file."""
    if at_file_start and encoding in _UTF8_FAMILY and data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8" if encoding == "utf-8-sig" else encoding)
    except UnicodeDecodeError as exc:
        raise RowError(f"not valid {encoding} at byte {exc.start} of the line") from None


def _lossy(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace").rstrip("\r\n")


def _strip_eol(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text


def too_long(line: RawLine, max_size: int) -> ParsedRecord | None:
    """The reject of a line longer than ``max_size``, with only its first bytes as ``raw``."""
    if line.size <= max_size:
        return None
    return ParsedRecord(
        line=line.number,
        raw=_lossy(line.data[:RAW_PREVIEW]),
        error=f"the record is {line.size} bytes, longer than the feed's max_record_size "
        f"({max_size} bytes)",
    )


class CsvParser:
    """CSV lines → records, with a header taken from the file's first line or declared."""

    def __init__(self, feed: Feed, header: list[str] | None) -> None:
        self._opts = feed.csv
        self.encoding = feed.text_encoding
        self.max_size = feed.max_record_size
        self._required = [f.source for f in feed.fields if f.required]
        self._sources = {f.source for f in feed.fields}
        self.columns: list[str] | None = list(self._opts.columns) or header

    def parse_header(self, line: RawLine) -> list[str]:
        """Parse the header line (the file's first line) into column names.

        A header that cannot be decoded, that lacks a column a required field comes from, or
        that names a column a field reads more than once fails the whole file: every row would
        be rejected (or silently take one of the two columns) otherwise.
        """
        if line.size > self.max_size:
            raise HeaderError(
                f"the header line is {line.size} bytes, longer than max_record_size "
                f"({self.max_size} bytes)"
            )
        try:
            text = decode_line(line.data, self.encoding, at_file_start=True)
        except RowError as exc:
            raise HeaderError(f"the header line is unreadable: {exc.reason}") from None
        columns = [c.strip() for c in next(csv.reader([_strip_eol(text)], **self.dialect()), [])]
        missing = [c for c in self._required if c not in columns]
        if missing:
            raise HeaderError(
                f"the header has no column(s) {missing} that the feed requires "
                f"(header: {columns[:20]})"
            )
        repeated = sorted({c for c in columns if columns.count(c) > 1 and c in self._sources})
        if repeated:
            raise HeaderError(
                f"the header repeats column(s) {repeated} that the feed reads: which one "
                "holds the value is ambiguous"
            )
        return columns

    def dialect(self) -> dict[str, Any]:
        return {"delimiter": self._opts.delimiter, "quotechar": self._opts.quotechar}

    def records(self, lines: Iterator[RawLine], *, owns_file_start: bool) -> Iterator[ParsedRecord]:
        """Parse records; the header line (if the feed has one) is consumed, not yielded."""
        if self._opts.header and owns_file_start:
            first = next(lines, None)
            if first is None:
                return
            header = self.parse_header(first)
            if not self._opts.columns:
                self.columns = header
        if self._opts.quoted_newlines:
            yield from _MultilineCsv(self, lines, owns_file_start=owns_file_start).records()
        else:
            yield from self._line_records(lines, owns_file_start=owns_file_start)

    def to_record(self, number: int, raw: str, row: list[str]) -> ParsedRecord:
        columns = self.columns or []
        if len(row) != len(columns):
            return ParsedRecord(
                line=number,
                raw=raw,
                error=f"expected {len(columns)} columns, got {len(row)}",
            )
        return ParsedRecord(line=number, raw=raw, values=dict(zip(columns, row, strict=True)))

    def _line_records(
        self, lines: Iterator[RawLine], *, owns_file_start: bool
    ) -> Iterator[ParsedRecord]:
        feeder = _OneLine()
        reader = csv.reader(feeder, strict=True, **self.dialect())
        for line in lines:
            if (reject := too_long(line, self.max_size)) is not None:
                owns_file_start = False
                yield reject
                continue
            try:
                text = _strip_eol(
                    decode_line(line.data, self.encoding, at_file_start=owns_file_start)
                )
            except RowError as exc:
                yield ParsedRecord(line=line.number, raw=_lossy(line.data), error=exc.reason)
                continue
            owns_file_start = False
            if not text.strip():
                continue  # a blank line is not a record
            feeder.text = text
            try:
                row = next(reader)
            except csv.Error as exc:
                yield ParsedRecord(line=line.number, raw=text, error=self._malformed(exc, text))
                continue
            yield self.to_record(line.number, text, row)

    def _malformed(self, exc: csv.Error, text: str) -> str:
        # Only a quoted field left open at the end of the line can be a field with a newline.
        if text.count(self._opts.quotechar) % 2:
            return (
                f"malformed CSV ({exc}): a quoted field is not closed on this line; if fields "
                "contain newlines, set csv.quoted_newlines: true"
            )
        return f"malformed CSV ({exc})"


class _OneLine:
    """The lines of one ``csv.reader`` a chunk reuses, handed over one at a time: a record
    that would run on past its line meets the end of the data, exactly as a reader of that
    line alone would (a fresh reader per line costs as much as parsing the line)."""

    __slots__ = ("text",)

    def __init__(self) -> None:
        self.text: str | None = None

    def __iter__(self) -> _OneLine:
        return self

    def __next__(self) -> str:
        text, self.text = self.text, None
        if text is None:
            raise StopIteration
        return text


class _MultilineCsv:
    """Records of a CSV whose quoted fields may span lines (``csv.quoted_newlines``).

    One strict ``csv.reader`` reads the whole stream; what the line source handed it since the
    last record is that record's text. A malformed record on one line is a reject, and reading
    goes on with the next line. A quoted field that never closes makes the rest of the file
    unreadable, and fails it with the line where the broken record starts: it shows as a
    malformed record spanning lines, a quoted field still open at the end of the file, or a
    record longer than ``max_record_size``. Counting every later line as a record (or reading
    the lines of a long quoted field as records) would be guessing.
    """

    def __init__(
        self, parser: CsvParser, lines: Iterator[RawLine], *, owns_file_start: bool
    ) -> None:
        self._parser = parser
        self._lines = lines
        self._at_start = owns_file_start
        self.max_size = parser.max_size
        self._numbers: list[int] = []
        self._texts: list[str] = []
        self._errors: list[str] = []
        self._bytes = 0
        self._exhausted = False

    def _text_lines(self) -> Iterator[str]:
        encoding = self._parser.encoding
        for line in self._lines:
            self._numbers.append(line.number)
            self._bytes += line.size
            if self._bytes > self.max_size:
                raise self._unreadable(
                    f"the record is longer than the feed's max_record_size ({self.max_size} "
                    "bytes); a quoted field that never closes reads like this"
                )
            try:
                text = decode_line(line.data, encoding, at_file_start=self._at_start)
            except RowError as exc:
                self._errors.append(exc.reason)
                text = line.data.decode(encoding, errors="replace")
            self._at_start = False
            self._texts.append(text)
            yield text
        self._exhausted = True

    def _unreadable(self, why: str) -> UnreadableRecordsError:
        first = self._numbers[0] if self._numbers else 0
        return UnreadableRecordsError(
            f"line {first}: {why}; the records after it cannot be told apart, so the file "
            "is not read further",
            line=first,
        )

    def _take(self) -> tuple[int, str, str | None]:
        number = self._numbers[0] if self._numbers else 0
        raw = _strip_eol("".join(self._texts))
        error = self._errors[0] if self._errors else None
        self._numbers.clear()
        self._texts.clear()
        self._errors.clear()
        self._bytes = 0
        return number, raw, error

    def records(self) -> Iterator[ParsedRecord]:
        reader = csv.reader(self._text_lines(), strict=True, **self._parser.dialect())
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if self._exhausted:
                    raise self._unreadable(
                        f"a quoted field is still open at the end of the file ({exc})"
                    ) from None
                if len(self._numbers) > 1:
                    raise self._unreadable(
                        f"malformed CSV on line {self._numbers[-1]} inside a quoted field ({exc})"
                    ) from None
                # A one-line record: the reader starts afresh with the next line.
                number, raw, _ = self._take()
                yield ParsedRecord(line=number, raw=raw, error=f"malformed CSV: {exc}")
                continue
            number, raw, error = self._take()
            if not row:
                continue
            if error:
                yield ParsedRecord(line=number, raw=raw, error=error)
                continue
            yield self._parser.to_record(number, raw, row)


def jsonl_records(
    lines: Iterator[RawLine], *, encoding: str, owns_file_start: bool, max_size: int
) -> Iterator[ParsedRecord]:
    """JSON Lines: one object per line; blank lines are skipped."""
    for line in lines:
        if (reject := too_long(line, max_size)) is not None:
            owns_file_start = False
            yield reject
            continue
        try:
            text = _strip_eol(decode_line(line.data, encoding, at_file_start=owns_file_start))
        except RowError as exc:
            yield ParsedRecord(line=line.number, raw=_lossy(line.data), error=exc.reason)
            continue
        owns_file_start = False
        if not text.strip():
            continue
        try:
            value = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            yield ParsedRecord(line=line.number, raw=text, error=f"invalid JSON: {exc.msg}")
            continue
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            yield ParsedRecord(line=line.number, raw=text, error=f"invalid JSON: {exc}")
            continue
        except RecursionError:
            yield ParsedRecord(
                line=line.number, raw=text, error="invalid JSON: nested too deeply to parse"
            )
            continue
        if not isinstance(value, dict):
            yield ParsedRecord(
                line=line.number,
                raw=text,
                error=f"expected a JSON object, got {type(value).__name__}",
            )
            continue
        yield ParsedRecord(line=line.number, raw=text, values=value)


def parse_records(
    feed: Feed,
    lines: Iterator[RawLine],
    *,
    owns_file_start: bool,
    header: list[str] | None = None,
) -> Iterator[ParsedRecord]:
    """Records of the feed's format from a range's lines."""
    if feed.format is Format.CSV:
        yield from CsvParser(feed, header).records(lines, owns_file_start=owns_file_start)
    else:
        yield from jsonl_records(
            lines,
            encoding=feed.encoding,
            owns_file_start=owns_file_start,
            max_size=feed.max_record_size,
        )
