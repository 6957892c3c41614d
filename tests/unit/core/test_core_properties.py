"""Property: for random files and chunk sizes, the union of the records of every chunk equals
the whole-file parse, with the same line numbers, nothing duplicated and nothing lost."""

from __future__ import annotations

import csv
import itertools
from collections import Counter

from coreparse import chunked_parse, csv_feed, flatten, jsonl_feed, whole_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.domain.lines import ParsedRecord

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Cells may hold delimiters and quotes (so some lines are malformed: those must be rejected
# identically whichever way the file is read), and non-ASCII text.
cell = st.text(alphabet=st.sampled_from(list('ab1., "é\t')), max_size=12)
csv_line = st.one_of(
    st.just(""),  # an empty line
    st.lists(cell, min_size=1, max_size=4).map(",".join),
)
json_line = st.one_of(
    st.just(""),
    st.just("   "),
    st.builds(
        lambda i, pad: f'{{"id": "{i}", "pad": "{pad}"}}',
        st.integers(0, 10**6),
        st.text(alphabet="xyz é", max_size=40),
    ),
    st.text(alphabet='{}[]":1a ', max_size=10),  # mostly not JSON objects: rejects
)


def assemble(lines: list[str], eol: str, trailing: bool) -> bytes:
    text = eol.join(lines) + (eol if trailing and lines else "")
    return text.encode("utf-8")


def check(feed, data: bytes, chunk_size: int, block_size: int) -> None:
    expected = whole_parse(feed, data)
    chunks, parts = chunked_parse(feed, data, chunk_size, block_size)
    got = flatten(parts)
    # ranges tile the file
    assert chunks[0].start == 0 and chunks[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))
    # no line is owned by two chunks, and the union is the whole-file parse, in order
    lines = Counter(r.line for r in got)
    assert not [line for line, n in lines.items() if n > 1]
    assert got == expected


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bool, bytes]:
    """(has a header row, file bytes): random lines, LF or CRLF, trailing newline or not,
    with or without a UTF-8 byte-order mark."""
    header = draw(st.booleans())
    lines = draw(st.lists(csv_line, max_size=30))
    if header:
        lines = ["id,amount", *lines]
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return header, bom + assemble(lines, eol, draw(st.booleans()))


@SETTINGS
@given(file=csv_files(), chunk_size=st.integers(1, 120), block_size=st.integers(1, 64))
def test_csv_chunks_union_is_the_whole_file(file, chunk_size, block_size):
    header, data = file
    feed = csv_feed() if header else csv_feed(header="false", columns="[id, amount]")
    check(feed, data, chunk_size, block_size)


@SETTINGS
@given(
    lines=st.lists(json_line, max_size=30),
    eol=st.sampled_from(["\n", "\r\n"]),
    trailing=st.booleans(),
    chunk_size=st.integers(1, 200),
    block_size=st.integers(1, 64),
)
def test_jsonl_chunks_union_is_the_whole_file(lines, eol, trailing, chunk_size, block_size):
    check(jsonl_feed(), assemble(lines, eol, trailing), chunk_size, block_size)


@SETTINGS
@given(
    lines=st.lists(st.text(alphabet="ab\r", max_size=8), max_size=20),
    chunk_size=st.integers(1, 40),
)
def test_stray_carriage_returns_do_not_move_records_between_chunks(lines, chunk_size):
    # bare CRs are not line ends for the reader; whatever they do to a row, they do it once
    feed = csv_feed(header="false", columns="[id, amount]")
    check(feed, assemble(lines, "\n", True), chunk_size, 5)


@SETTINGS
@given(lines=st.lists(st.text(alphabet='ab,"\r ', max_size=10), max_size=20))
def test_one_reader_per_chunk_reads_each_line_as_a_reader_of_that_line_alone(lines):
    """The parser reuses one csv.reader per chunk: each line still parses (or fails) exactly
    as ``csv.reader([line], strict=True)`` parses it, whatever the line before it left open."""
    feed = csv_feed(header="false", columns="[id, amount]")
    got = whole_parse(feed, assemble(lines, "\n", True))
    expected: list[tuple[int, object]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = next(csv.reader([line], strict=True))
        except csv.Error:
            expected.append((number, "malformed CSV"))
            continue
        expected.append((number, row if len(row) == 2 else f"expected 2 columns, got {len(row)}"))

    def outcome(record: ParsedRecord) -> object:
        if record.values is not None:
            return list(record.values.values())
        error = record.error or ""
        return "malformed CSV" if error.startswith("malformed CSV") else error

    assert [(r.line, outcome(r)) for r in got] == expected
