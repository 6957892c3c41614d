"""Chunk planning: byte ranges, line numbering, and which chunk owns a straddling record."""

from __future__ import annotations

import pytest
from coreparse import blocks, chunked_parse, csv_feed, flatten, jsonl_feed, whole_parse

from ingest.domain.chunks import Chunk, first_lines, plan_chunks, plan_ranges

# "a,1\n" is bytes 0-3, "bb,2\n" bytes 4-8, "ccc,3\n" bytes 9-14
DATA = b"a,1\nbb,2\nccc,3\n"


def ids(part):
    return [r.values["id"] for r in part if r.values]


@pytest.fixture
def feed():
    return csv_feed(header="false", columns="[id, amount]")


def test_ranges_cover_the_file_without_gaps_or_overlap():
    assert plan_ranges(10, 4, splittable=True) == [(0, 4), (4, 8), (8, 10)]
    assert plan_ranges(8, 4, splittable=True) == [(0, 4), (4, 8)]
    assert plan_ranges(4, 4, splittable=True) == [(0, 4)]
    assert plan_ranges(100, 4, splittable=False) == [(0, 100)]
    assert plan_ranges(0, 4, splittable=True) == [(0, 0)]
    with pytest.raises(ValueError, match="positive"):
        plan_ranges(10, 0, splittable=True)


def test_a_split_file_needs_its_bytes():
    with pytest.raises(ValueError, match="bytes"):
        plan_chunks(10, 4, splittable=True)
    # an unsplit file does not
    assert plan_chunks(10, 40, splittable=True) == [Chunk(0, 0, 10, 1)]


def test_boundary_in_the_middle_of_a_record(feed):
    # chunk size 4: [0,4) [4,8) [8,12) [12,15); "ccc,3" starts at 9 and runs past 12
    chunks, parts = chunked_parse(feed, DATA, 4)
    assert [(c.start, c.end) for c in chunks] == [(0, 4), (4, 8), (8, 12), (12, 15)]
    assert [ids(p) for p in parts] == [["a"], ["bb"], ["ccc"], []]
    assert [r.line for r in flatten(parts)] == [1, 2, 3]


def test_boundary_on_the_newline_byte(feed):
    # byte 8 is the newline ending "bb,2": "bb,2" started in chunk 0, so chunk 0 owns it
    chunks, parts = chunked_parse(feed, DATA, 8)
    assert [(c.start, c.end) for c in chunks] == [(0, 8), (8, 15)]
    assert [ids(p) for p in parts] == [["a", "bb"], ["ccc"]]
    assert chunks[1].first_line == 3


def test_boundary_just_after_a_newline(feed):
    # byte 9 is where "ccc,3" starts: the second chunk owns it
    chunks, parts = chunked_parse(feed, DATA, 9)
    assert [(c.start, c.end) for c in chunks] == [(0, 9), (9, 15)]
    assert [ids(p) for p in parts] == [["a", "bb"], ["ccc"]]
    assert chunks[1].first_line == 3


def test_boundary_between_cr_and_lf():
    feed = csv_feed(header="false", columns="[id, amount]")
    data = b"a,1\r\nbb,2\r\n"
    # byte 4 is the LF of the first record: it still belongs to "a,1" in chunk 0
    _chunks, parts = chunked_parse(feed, data, 4)
    assert [ids(p) for p in parts] == [["a"], ["bb"], []]
    assert [r.raw for r in flatten(parts)] == ["a,1", "bb,2"]


@pytest.mark.parametrize(
    "feed",
    [csv_feed(), csv_feed(header="false", columns="[id, amount]"), jsonl_feed()],
    ids=["csv-header", "csv-columns", "jsonl"],
)
def test_every_boundary_position_reads_every_record_exactly_once(feed):
    if feed.format == "jsonl":
        data = b'{"id": "1"}\n\n{"id": "22", "x": [1]}\r\n{"id": "333"}\n{"id": "4"}'
    else:
        head = b"id,amount\r\n" if feed.csv.header else b""
        data = head + b'1,1\n22,"2,2"\r\n\n333,3\n4444,4.44\n5,5'
    expected = whole_parse(feed, data)
    assert len(expected) >= 4
    # every chunk size puts a boundary at every offset of some record, over all sizes
    for chunk_size in range(1, len(data) + 1):
        _chunks, parts = chunked_parse(feed, data, chunk_size, block_size=3)
        assert flatten(parts) == expected, f"chunk_size={chunk_size}"


def test_first_lines_counts_newlines_across_blocks():
    data = b"x\n\nyy\nzzz\n" * 3
    starts = list(range(len(data)))
    for block_size in (1, 2, 5, 64):
        got = first_lines(blocks(data, block_size), starts)
        for s, line in zip(starts, got, strict=True):
            # the first record at or after s-1's newline: one more than the newlines before it
            expected = 1 if s == 0 else data[: s - 1].count(b"\n") + 2
            assert line == expected, (block_size, s)


def test_plan_numbers_each_chunk_from_its_first_owned_line():
    feed = csv_feed()
    data = b"id,amount\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(1, 101))
    chunks, parts = chunked_parse(feed, data, 50)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len(chunks) == len(range(0, len(data), 50))
    assert chunks[0].first_line == 1
    assert parts[0][0].line == 2  # the header is line 1
    for chunk in chunks[1:]:
        # every 50-byte chunk of short lines owns records, numbered from its first_line
        owned = parts[chunk.index]
        assert owned
        assert owned[0].line == chunk.first_line
        assert [r.line for r in owned] == list(
            range(chunk.first_line, chunk.first_line + len(owned))
        )
