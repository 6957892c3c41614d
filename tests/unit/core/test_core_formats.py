"""Stream parsers: CSV and JSON Lines edge cases, read whole and in chunks."""

from __future__ import annotations

import gzip
import io
from decimal import Decimal

import pytest
from coreparse import chunked_parse, csv_feed, flatten, jsonl_feed, whole_parse

from ingest.domain.lines import decode_line, iter_lines
from ingest.errors import RowError


def ok(records):
    """(line, values) of the accepted records."""
    return [(r.line, r.values) for r in records if r.error is None]


def rejected(records):
    """(line, reason) of the rejected records."""
    return [(r.line, r.error) for r in records if r.error is not None]


def test_crlf_line_endings_are_stripped_from_values_and_raw():
    feed = csv_feed()
    records = whole_parse(feed, b"id,amount\r\n1,2.5\r\n2,3\r\n")
    assert ok(records) == [(2, {"id": "1", "amount": "2.5"}), (3, {"id": "2", "amount": "3"})]
    assert [r.raw for r in records] == ["1,2.5", "2,3"]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_file_without_trailing_newline_keeps_its_last_record(eol):
    feed = csv_feed()
    data = eol.join([b"id,amount", b"1,2", b"3,4"])
    assert ok(whole_parse(feed, data)) == [
        (2, {"id": "1", "amount": "2"}),
        (3, {"id": "3", "amount": "4"}),
    ]
    # split so that the last record is alone in the last chunk, and elsewhere
    for chunk_size in range(1, len(data) + 1):
        _, parts = chunked_parse(feed, data, chunk_size)
        assert flatten(parts) == whole_parse(feed, data), chunk_size


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_bom_is_dropped_from_the_header(encoding):
    feed = csv_feed(encoding=encoding)
    records = whole_parse(feed, b"\xef\xbb\xbfid,amount\n\xc3\xa9t\xc3\xa9,1\n")
    assert ok(records) == [(2, {"id": "été", "amount": "1"})]


def test_utf8_bom_is_dropped_in_jsonl_and_header_of_later_chunks():
    assert ok(whole_parse(jsonl_feed(), b'\xef\xbb\xbf{"id": "a"}\n{"id": "b"}\n')) == [
        (1, {"id": "a"}),
        (2, {"id": "b"}),
    ]
    feed = csv_feed()
    data = b"\xef\xbb\xbfid,amount\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(20))
    chunks, parts = chunked_parse(feed, data, 16)
    assert len(chunks) > 3
    # every chunk after the first reads the header itself, BOM and all
    assert all(set(r.values or {}) == {"id", "amount"} for r in flatten(parts))
    assert flatten(parts) == whole_parse(feed, data)


def test_latin1_input_decodes_with_a_latin1_feed():
    feed = csv_feed(encoding="latin-1")
    records = whole_parse(feed, b"id,amount\ncaf\xe9,1\nna\xefve,2\n")
    assert ok(records) == [(2, {"id": "café", "amount": "1"}), (3, {"id": "naïve", "amount": "2"})]


def test_latin1_bytes_in_a_utf8_feed_reject_only_that_row():
    feed = csv_feed()
    records = whole_parse(feed, b"id,amount\ncaf\xe9,1\nok,2\n")
    assert ok(records) == [(3, {"id": "ok", "amount": "2"})]
    assert rejected(records) == [(2, "not valid utf-8 at byte 3 of the line")]
    assert records[0].raw == "caf\\xe9,1"  # the raw line survives, escaped, for the reject file


def test_decode_line_drops_a_bom_only_at_file_start():
    assert decode_line(b"\xef\xbb\xbfx\n", "utf-8", at_file_start=True) == "x\n"
    assert decode_line(b"\xef\xbb\xbfx\n", "utf-8", at_file_start=False) == "\ufeffx\n"
    with pytest.raises(RowError, match="not valid utf-8"):
        decode_line(b"\xff", "utf-8", at_file_start=False)


@pytest.mark.parametrize(
    "feed",
    [csv_feed(), csv_feed(header="false", columns="[id, amount]"), jsonl_feed()],
    ids=["csv-header", "csv-columns", "jsonl"],
)
def test_empty_file_has_no_records(feed):
    assert whole_parse(feed, b"") == []
    chunks, parts = chunked_parse(feed, b"", 4)
    assert len(chunks) == 1
    assert parts == [[]]


@pytest.mark.parametrize("data", [b"id,amount", b"id,amount\n", b"id,amount\r\n"])
def test_header_only_file_has_no_records(data):
    feed = csv_feed()
    assert whole_parse(feed, data) == []
    for chunk_size in range(1, len(data) + 1):
        assert flatten(chunked_parse(feed, data, chunk_size)[1]) == []


def test_a_line_longer_than_the_chunk_size_is_read_once_by_the_chunk_it_starts_in():
    feed = csv_feed()
    long_id = "x" * 500
    data = b"id,amount\n1,1\n" + long_id.encode() + b",2\n3,3\n"
    chunks, parts = chunked_parse(feed, data, 32)
    assert len(chunks) == len(range(0, len(data), 32))
    owners = [
        i
        for i, part in enumerate(parts)
        if any(r.values and r.values["id"] == long_id for r in part)
    ]
    assert owners == [0]  # it starts at byte 14, inside chunk 0
    # the chunks wholly inside the long line own nothing
    assert all(part == [] for part in parts[1:-1])
    assert ok(flatten(parts)) == [
        (2, {"id": "1", "amount": "1"}),
        (3, {"id": long_id, "amount": "2"}),
        (4, {"id": "3", "amount": "3"}),
    ]


def test_quoted_commas_stay_in_their_field():
    feed = csv_feed()
    data = b'id,amount\n"Smith, John",1\n"a ""quoted"", b",2\n'
    assert ok(whole_parse(feed, data)) == [
        (2, {"id": "Smith, John", "amount": "1"}),
        (3, {"id": 'a "quoted", b', "amount": "2"}),
    ]
    for chunk_size in (3, 5, 11, 17):
        assert flatten(chunked_parse(feed, data, chunk_size)[1]) == whole_parse(feed, data)


def test_custom_delimiter_and_quotechar():
    feed = csv_feed(delimiter="';'", quotechar='"\'"')
    assert ok(whole_parse(feed, b"id;amount\n'a;b';1\n")) == [(2, {"id": "a;b", "amount": "1"})]
    tab = csv_feed(delimiter="'\\t'")
    assert ok(whole_parse(tab, b"id\tamount\na,b\t1\n")) == [(2, {"id": "a,b", "amount": "1"})]


def test_quoted_newlines_make_the_file_one_chunk_and_keep_line_numbers():
    feed = csv_feed(quoted_newlines="true")
    assert not feed.splittable
    data = b'id,amount\n"multi\nline\r\nid",1\n2,2\n\n"x, y",3\n'
    chunks, parts = chunked_parse(feed, data, 4)
    assert len(chunks) == 1
    assert (chunks[0].start, chunks[0].end) == (0, len(data))
    assert ok(parts[0]) == [
        (2, {"id": "multi\nline\r\nid", "amount": "1"}),
        (5, {"id": "2", "amount": "2"}),
        (7, {"id": "x, y", "amount": "3"}),
    ]
    assert parts[0][0].raw == '"multi\nline\r\nid",1'


def test_quoted_newline_in_a_line_mode_feed_is_rejected_with_a_hint():
    feed = csv_feed()
    records = whole_parse(feed, b'id,amount\n"multi\nline",1\n2,2\n')
    line, reason = rejected(records)[0]
    assert line == 2
    assert "quoted_newlines" in reason
    assert (4, {"id": "2", "amount": "2"}) in ok(records)


def test_wrong_column_count_is_a_reject_with_the_counts():
    records = whole_parse(csv_feed(), b"id,amount\n1,2,3\n4\n5,6\n")
    assert rejected(records) == [
        (2, "expected 2 columns, got 3"),
        (3, "expected 2 columns, got 1"),
    ]
    assert ok(records) == [(4, {"id": "5", "amount": "6"})]


def test_declared_columns_without_header():
    feed = csv_feed(header="false", columns="[id, amount]")
    assert ok(whole_parse(feed, b"1,2\n3,4\n")) == [
        (1, {"id": "1", "amount": "2"}),
        (2, {"id": "3", "amount": "4"}),
    ]


def test_jsonl_blank_lines_are_skipped_and_line_numbers_kept():
    data = b'{"id": "a"}\n\n   \n\r\n{"id": "b", "n": 1.50}\n\n'
    records = whole_parse(jsonl_feed(), data)
    assert [(r.line, r.values) for r in records] == [(1, {"id": "a"}), (5, {"id": "b", "n": 1.50})]
    value = records[1].values["n"]
    assert isinstance(value, Decimal)  # never a float
    assert str(value) == "1.50"
    for chunk_size in range(1, len(data) + 1):
        assert flatten(chunked_parse(jsonl_feed(), data, chunk_size)[1]) == records


def test_jsonl_invalid_lines_and_non_objects_are_rejected():
    records = whole_parse(jsonl_feed(), b'{"id": "a"}\n{"id": \n[1, 2]\n"s"\n{"id": "b"}')
    assert rejected(records) == [
        (2, "invalid JSON: Expecting value"),
        (3, "expected a JSON object, got list"),
        (4, "expected a JSON object, got str"),
    ]
    assert ok(records) == [(1, {"id": "a"}), (5, {"id": "b"})]


def test_jsonl_latin1_encoding():
    records = whole_parse(jsonl_feed("latin-1"), b'{"id": "caf\xe9"}\n')
    assert ok(records) == [(1, {"id": "café"})]


@pytest.mark.parametrize("feed", [csv_feed(), jsonl_feed()], ids=["csv", "jsonl"])
def test_gzip_input_parses_like_the_plain_file(feed):
    if feed.format == "csv":
        plain = b"id,amount\r\n" + b"".join(b"%d,%d.5\r\n" % (i, i) for i in range(2000))
    else:
        plain = b"".join(b'{"id": "%d"}\n\n' % i for i in range(2000))
    packed = gzip.compress(plain)
    with gzip.GzipFile(fileobj=io.BytesIO(packed), mode="rb") as stream:
        records = whole_parse(feed, stream)  # type: ignore[arg-type]
    assert records == whole_parse(feed, plain)
    assert len(records) == 2000


def test_iter_lines_from_a_mid_file_offset_numbers_from_first_line():
    data = b"aa\nbb\ncc\ndd\n"
    stream = io.BytesIO(data)
    stream.seek(5)  # one byte before offset 6, where "cc" starts
    lines = list(iter_lines(stream, start=6, end=9, first_line=3))
    assert [(line.number, line.data) for line in lines] == [(3, b"cc\n")]
    # a range that starts inside "bb" skips it and owns the next record
    stream.seek(3)
    lines = list(iter_lines(stream, start=4, end=8, first_line=3))
    assert [(line.number, line.data) for line in lines] == [(3, b"cc\n")]


def test_a_line_longer_than_max_record_size_is_a_short_reject_and_the_rest_goes_on():
    feed = csv_feed()
    assert feed.max_record_size == 1024 * 1024
    data = b"id,amount\n1,1\n" + b"2," + b"9" * (3 * 1024 * 1024) + b"\n3,3\n"
    records = whole_parse(feed, data)
    assert ok(records) == [(2, {"id": "1", "amount": "1"}), (4, {"id": "3", "amount": "3"})]
    [(line, reason)] = rejected(records)
    assert line == 3
    assert f"{3 * 1024 * 1024 + 3} bytes, longer than the feed's max_record_size" in reason
    assert len(records[1].raw) <= 1024
    # split anywhere, the huge line is still one reject and the lines keep their numbers
    # (chunk boundaries inside the short lines: test_core_properties; 7-byte chunks of this
    # 3 MiB file were 450,000 chunks and a minute of this test)
    for chunk_size in (4099, 1024 * 1024, 2 * 1024 * 1024 + 5):
        _, parts = chunked_parse(feed, data, chunk_size, block_size=65536)
        assert flatten(parts) == records, chunk_size


def test_iter_lines_keeps_only_the_first_bytes_of_a_long_line():
    stream = io.BytesIO(b"short\n" + b"x" * 100 + b"\nend")
    lines = list(iter_lines(stream, start=0, end=None, first_line=1, max_size=10))
    assert [(n.number, n.data, n.dropped, n.size) for n in lines] == [
        (1, b"short\n", 0, 6),
        (2, b"x" * 11, 90, 101),
        (3, b"end", 0, 3),
    ]


def test_the_quoted_newlines_hint_is_given_only_for_an_open_quote():
    feed = csv_feed()
    records = whole_parse(feed, b'id,amount\n"a"b,1\n"open,1\n')
    reasons = dict(rejected(records))
    assert "quoted_newlines" not in reasons[2]
    assert "quoted_newlines" in reasons[3]


def test_jsonl_huge_integers_and_deep_nesting_are_rejects():
    data = b'{"id": 1' + b"1" * 5000 + b"}\n" + b"[" * 50_000 + b"\n" + b'{"id": "ok"}\n'
    records = whole_parse(jsonl_feed(), data)
    reasons = dict(rejected(records))
    assert "4300" in reasons[1]
    assert reasons[2].startswith("invalid JSON")
    assert ok(records) == [(3, {"id": "ok"})]


def test_quoted_newlines_a_quote_that_never_closes_fails_with_its_line():
    from ingest.errors import UnreadableRecordsError

    feed = csv_feed(quoted_newlines="true")
    with pytest.raises(UnreadableRecordsError, match="line 3: a quoted field is still open"):
        whole_parse(feed, b'id,amount\n1,2\n"never closed,3\n4,4\n5,5\n')
    big = b"id,amount\n" + b'"x' + b"y\n" * (600 * 1024)  # past max_record_size, no end quote
    with pytest.raises(UnreadableRecordsError, match="line 2: the record is longer"):
        whole_parse(feed, big)


def test_a_header_that_repeats_a_column_a_field_reads_is_refused():
    from ingest.errors import HeaderError

    with pytest.raises(HeaderError, match=r"repeats column\(s\) \['amount'\]"):
        whole_parse(csv_feed(), b"id,amount,amount\n1,2,3\n")
    # a repeated column no field reads is harmless
    assert ok(whole_parse(csv_feed(), b"id,amount,x,x\n1,2,a,b\n")) == [
        (2, {"id": "1", "amount": "2", "x": "b"})
    ]
