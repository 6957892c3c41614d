"""Helpers for the core parser tests: whole-file parses and chunked parses done the way the
processor does them (plan_chunks, then one stream per range positioned at max(start - 1, 0))."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from ingest.domain.chunks import Chunk, plan_chunks
from ingest.domain.csv_records import CsvParser
from ingest.domain.feeds import Feed, FeedSet, Format, parse_feeds
from ingest.domain.formats import parse_records
from ingest.domain.lines import ParsedRecord, RawLine, iter_lines


def feed_of(yaml_text: str, name: str | None = None) -> Feed:
    """Parse a feeds document and return its only (or named) feed."""
    feeds: FeedSet = parse_feeds(yaml_text, source="test-feeds.yaml")
    return feeds.get(name) if name else feeds.feeds[0]


def csv_feed(**csv_options: object) -> Feed:
    """A CSV feed ``id,amount`` with the given csv options (YAML flow values)."""
    opts = ", ".join(f"{k}: {v}" for k, v in csv_options.items())
    return feed_of(
        f"""
feeds:
  - name: t
    match: "in/*.csv"
    format: csv
    csv: {{{opts}}}
    key: {{pk: "T#{{id}}"}}
    fields:
      id: {{type: string, required: true}}
      amount: {{type: decimal}}
"""
    )


def jsonl_feed(encoding: str = "utf-8") -> Feed:
    """A JSON Lines feed with an ``id`` field."""
    return feed_of(
        f"""
feeds:
  - name: j
    match: "in/*.jsonl"
    format: jsonl
    jsonl: {{encoding: {encoding}}}
    key: {{pk: "J#{{id}}"}}
    fields:
      id: {{type: string, required: true}}
"""
    )


def whole_parse(feed: Feed, data: bytes | io.BufferedIOBase) -> list[ParsedRecord]:
    """Every record of a file read as one range from byte 0 to the end."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    lines = iter_lines(stream, start=0, end=None, first_line=1)  # type: ignore[arg-type]
    return list(parse_records(feed, lines, owns_file_start=True))


def blocks(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in blocks of ``size`` bytes, as a store would stream it."""
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def chunk_records(feed: Feed, data: bytes, chunk: Chunk, *, single: bool) -> list[ParsedRecord]:
    """The records one chunk owns, read the way the processor reads a ranged GET."""
    header = None
    if feed.format is Format.CSV and feed.csv.header and chunk.start > 0:
        first = io.BytesIO(data).readline()
        header = CsvParser(feed, None).parse_header(RawLine(number=1, data=first))
    stream = io.BytesIO(data)
    stream.seek(max(chunk.start - 1, 0))
    lines = iter_lines(
        stream, start=chunk.start, end=None if single else chunk.end, first_line=chunk.first_line
    )
    return list(parse_records(feed, lines, owns_file_start=chunk.start == 0, header=header))


def plan(feed: Feed, data: bytes, chunk_size: int, block_size: int = 7) -> list[Chunk]:
    """Plan chunks for ``data``, streaming its bytes in small blocks to exercise counting."""
    return plan_chunks(
        len(data), chunk_size, splittable=feed.splittable, read_blocks=blocks(data, block_size)
    )


def chunked_parse(
    feed: Feed, data: bytes, chunk_size: int, block_size: int = 7
) -> tuple[list[Chunk], list[list[ParsedRecord]]]:
    """Plan ``data`` into chunks and parse each one separately."""
    chunks = plan(feed, data, chunk_size, block_size)
    single = len(chunks) == 1
    return chunks, [chunk_records(feed, data, c, single=single) for c in chunks]


def flatten(parts: Iterable[list[ParsedRecord]]) -> list[ParsedRecord]:
    return [record for part in parts for record in part]
