"""Stream parsers: byte ranges of a landed file → raw records, in constant memory.

Records are read line by line from a binary stream. For a byte range ``[start, end)`` a chunk
owns exactly the records that *start* inside it (Hadoop's TextInputFormat rule): a reader that
begins after byte 0 skips the partial record it lands in, and the last record it owns may run
past ``end``. Files whose records may span lines (CSV with quoted newlines) and gzip files are
never split, so for them the range is always the whole file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from ingest.errors import HeaderError, RowError
from ingest.feeds import Feed, Format

_BOM = b"\xef\xbb\xbf"
_UTF8_FAMILY = frozenset({"utf-8", "utf-8-sig"})


@dataclass(frozen=True)
class RawLine:
    """One physical line and the 1-based line number it has in the whole file."""

    number: int
    data: bytes


@dataclass(frozen=True)
class ParsedRecord:
    """A record as parsed from the file: its values, or the reason it is rejected."""

    line: int
    raw: str
    values: dict[str, Any] | None = None
    error: str | None = None


def iter_lines(
    stream: IO[bytes],
    *,
    start: int,
    end: int | None,
    first_line: int,
) -> Iterator[RawLine]:
    """The lines of a stream positioned at ``max(start - 1, 0)`` whose first byte lies in
    ``[start, end)`` (``end=None``: to the end of the stream).

    ``first_line`` is the file-wide number of the first line this range owns.
    """
    pos = start
    if start > 0:
        # We were positioned one byte early: if that byte is a newline the record at
        # ``start`` is ours; otherwise we are inside a record owned by the previous range.
        skipped = stream.readline()
        if not skipped.endswith(b"\n"):
            return
        pos = start - 1 + len(skipped)
    number = first_line
    while end is None or pos < end:
        line = stream.readline()
        if not line:
            return
        yield RawLine(number=number, data=line)
        pos += len(line)
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


class CsvParser:
    """CSV lines → records, with a header taken from the file's first line or declared."""

    def __init__(self, feed: Feed, header: list[str] | None) -> None:
        self._opts = feed.csv
        self._encoding = feed.text_encoding
        self._required = [f.source for f in feed.fields if f.required]
        self.columns: list[str] | None = list(self._opts.columns) or header

    def parse_header(self, line: RawLine) -> list[str]:
        """Parse the header line (the file's first line) into column names.

        A header that cannot be decoded, or that lacks a column a required field comes from,
        fails the whole file: every row would be rejected for the same reason otherwise.
        """
        try:
            text = decode_line(line.data, self._encoding, at_file_start=True)
        except RowError as exc:
            raise HeaderError(f"the header line is unreadable: {exc.reason}") from None
        columns = [c.strip() for c in next(csv.reader([_strip_eol(text)], **self._dialect()), [])]
        missing = [c for c in self._required if c not in columns]
        if missing:
            raise HeaderError(
                f"the header has no column(s) {missing} that the feed requires "
                f"(header: {columns[:20]})"
            )
        return columns

    def _dialect(self) -> dict[str, Any]:
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
            yield from self._multiline_records(lines, owns_file_start=owns_file_start)
        else:
            yield from self._line_records(lines, owns_file_start=owns_file_start)

    def _to_record(self, number: int, raw: str, row: list[str]) -> ParsedRecord:
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
        dialect = self._dialect()
        for line in lines:
            try:
                text = _strip_eol(
                    decode_line(line.data, self._encoding, at_file_start=owns_file_start)
                )
            except RowError as exc:
                yield ParsedRecord(line=line.number, raw=_lossy(line.data), error=exc.reason)
                continue
            owns_file_start = False
            if not text.strip():
                continue  # a blank line is not a record
            try:
                row = next(csv.reader([text], strict=True, **dialect))
            except csv.Error as exc:
                yield ParsedRecord(
                    line=line.number,
                    raw=text,
                    error=f"malformed CSV ({exc}); if fields contain newlines, set "
                    "csv.quoted_newlines: true",
                )
                continue
            yield self._to_record(line.number, text, row)

    def _multiline_records(
        self, lines: Iterator[RawLine], *, owns_file_start: bool
    ) -> Iterator[ParsedRecord]:
        # One reader over the whole stream so quoted fields may span lines. csv.reader pulls
        # exactly the lines of one record, so what text_lines() saw since the last record is it.
        numbers: list[int] = []
        texts: list[str] = []
        errors: list[str] = []

        def text_lines() -> Iterator[str]:
            at_start = owns_file_start
            for line in lines:
                numbers.append(line.number)
                try:
                    text = decode_line(line.data, self._encoding, at_file_start=at_start)
                except RowError as exc:
                    errors.append(exc.reason)
                    text = line.data.decode(self._encoding, errors="replace")
                at_start = False
                texts.append(text)
                yield text

        reader = csv.reader(text_lines(), **self._dialect())
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield ParsedRecord(
                    line=numbers[0] if numbers else 0,
                    raw=_strip_eol("".join(texts)),
                    error=f"malformed CSV: {exc}",
                )
                return
            number = numbers[0] if numbers else 0
            raw = _strip_eol("".join(texts))
            error = errors[0] if errors else None
            numbers.clear()
            texts.clear()
            errors.clear()
            if not row:
                continue
            if error:
                yield ParsedRecord(line=number, raw=raw, error=error)
                continue
            yield self._to_record(number, raw, row)


def jsonl_records(
    lines: Iterator[RawLine], *, encoding: str, owns_file_start: bool
) -> Iterator[ParsedRecord]:
    """JSON Lines: one object per line; blank lines are skipped."""
    for line in lines:
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
        yield from jsonl_records(lines, encoding=feed.encoding, owns_file_start=owns_file_start)
