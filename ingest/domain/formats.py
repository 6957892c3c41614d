"""Stream parsers: a range's lines → raw records of the feed's format (CSV in
:mod:`ingest.domain.csv_records`, fixed-width in :mod:`ingest.domain.fixed_width`, JSON Lines
here), in constant memory (lines: :mod:`ingest.domain.lines`). xlsx files are not lines: see
:mod:`ingest.domain.xlsx_records`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

from ingest.domain.csv_records import CsvParser
from ingest.domain.feed_types import Feed, Format
from ingest.domain.fixed_width import ChunkTally, FixedWidthParser
from ingest.domain.lines import ParsedRecord, RawLine, decode_line, lossy, strip_eol, too_long
from ingest.errors import RowError


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
            text = strip_eol(decode_line(line.data, encoding, at_file_start=owns_file_start))
        except RowError as exc:
            yield ParsedRecord(line=line.number, raw=lossy(line.data), error=exc.reason)
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
    following: Iterator[RawLine] | None = None,
    tally: ChunkTally | None = None,
) -> Iterator[ParsedRecord]:
    """Records of the feed's format from a range's lines.

    ``following`` are the lines after the range (a fixed-width chunk looks at them to tell
    its trailer lines); ``tally`` collects what a fixed-width chunk skips and declares.
    """
    if feed.format is Format.CSV:
        yield from CsvParser(feed, header).records(lines, owns_file_start=owns_file_start)
    elif feed.format is Format.FIXED_WIDTH:
        parser = FixedWidthParser(feed, tally if tally is not None else ChunkTally())
        yield from parser.records(lines, following if following is not None else iter(()))
    else:
        yield from jsonl_records(
            lines,
            encoding=feed.encoding,
            owns_file_start=owns_file_start,
            max_size=feed.max_record_size,
        )
