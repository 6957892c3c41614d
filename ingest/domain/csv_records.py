"""CSV lines → records: a header from the file's first line (or declared), one strict
``csv.reader`` per chunk, and records whose quoted fields span lines (``quoted_newlines``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from ingest.domain.feed_types import MAX_RECORD_SIZE_LIMIT, Feed
from ingest.domain.lines import ParsedRecord, RawLine, decode_line, lossy, strip_eol, too_long
from ingest.errors import HeaderError, RowError, UnreadableRecordsError

# Records are bounded by the feed's max_record_size (checked here, per record); the csv
# module's own per-field limit (128 KiB by default) must not be the smaller one.
csv.field_size_limit(MAX_RECORD_SIZE_LIMIT)


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
        columns = [c.strip() for c in next(csv.reader([strip_eol(text)], **self.dialect()), [])]
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
                text = strip_eol(
                    decode_line(line.data, self.encoding, at_file_start=owns_file_start)
                )
            except RowError as exc:
                yield ParsedRecord(line=line.number, raw=lossy(line.data), error=exc.reason)
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
        raw = strip_eol("".join(self._texts))
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
