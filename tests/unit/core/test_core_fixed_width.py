"""Fixed-width files: fields by column, header/trailer lines, record types, mainframe numbers,
the trailer count check, and (a property) chunked parses that agree with the whole-file one."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from coreparse import feed_of, plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.domain.chunks import Chunk
from ingest.domain.feeds import Feed
from ingest.domain.files import FileEntry
from ingest.domain.fixed_width import ChunkTally, finish_check
from ingest.domain.formats import parse_records
from ingest.domain.lines import ParsedRecord, iter_lines
from ingest.domain.records import typed_fields
from ingest.errors import ConfigError, TrailerError

PAYMENTS = """
feeds:
  - name: payments
    match: "inbound/{partner}/payments/*.txt"
    format: fixed_width
    fixed_width: {encoding: latin-1, header_lines: 1, trailer_lines: 1,
                  record_type: {start: 1, width: 1, value: "D"},
                  trailer: {count_start: 2, count_width: 9}}
    key: {pk: "PAYMENT#{payment_id}", sk: "PARTNER#{partner}"}
    fields:
      payment_id: {type: string, required: true, start: 2, width: 10}
      amount:     {type: decimal, required: true, start: 12, width: 12, scale: 2}
      booked_on:  {type: date, start: 24, width: 8, format: "%Y%m%d"}
      units:      {type: int, start: 32, width: 8}
"""


def payments() -> Feed:
    return feed_of(PAYMENTS)


def detail(pid: str, amount: str, day: str = "20240131", units: str = "") -> str:
    return f"D{pid:<10}{amount:>12}{day:<8}{units:>8}"


def parse(feed: Feed, data: bytes, chunk: Chunk, *, single: bool) -> tuple[list, ChunkTally]:
    """One chunk's records as the processor reads them: a stream from max(start - 1, 0), the
    range's lines, then what follows the range."""
    stream = io.BytesIO(data)
    stream.seek(max(chunk.start - 1, 0))
    end = None if single else chunk.end
    lines = iter_lines(stream, start=chunk.start, end=end, first_line=chunk.first_line)
    following = iter_lines(stream, start=0, end=None, first_line=0)
    tally = ChunkTally()
    records = list(
        parse_records(
            feed, lines, owns_file_start=chunk.start == 0, following=following, tally=tally
        )
    )
    return records, tally


def whole(feed: Feed, data: bytes) -> tuple[list[ParsedRecord], ChunkTally]:
    return parse(feed, data, Chunk(0, 0, len(data), 1), single=True)


def file_of(lines: list[str], eol: str = "\r\n") -> bytes:
    return (eol.join(lines) + eol).encode("latin-1")


def test_header_trailer_and_record_types():
    data = file_of(
        [
            "H20240131ACME BANK",
            detail("P1", "000000012345", units="00000007"),
            "X some other record type",
            detail("P2", "-00000000500", day="20240201"),
            "X another",
            "",
            detail("Pé", "000000000001"),
            "T000000003",
        ]
    )
    records, tally = whole(payments(), data)
    assert [r.line for r in records] == [2, 4, 7]
    assert all(r.error is None for r in records)
    assert (tally.skipped, tally.declared) == (2, 3)
    typed = [typed_fields(payments(), r.values) for r in records]
    assert typed == [
        {
            "payment_id": "P1",
            "amount": Decimal("123.45"),
            "booked_on": "2024-01-31",
            "units": 7,
        },
        {"payment_id": "P2", "amount": Decimal("-5.00"), "booked_on": "2024-02-01"},
        {"payment_id": "Pé", "amount": Decimal("0.01"), "booked_on": "2024-01-31"},
    ]


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("000012345", 2, Decimal("123.45")),
        ("-0000123", 0, Decimal("-123")),
        ("0000123-", 0, Decimal("-123")),
        ("0000123+", 2, Decimal("1.23")),
        ("+0000123", 1, Decimal("12.3")),
        ("-00000", 2, Decimal("0.00")),
        ("00012.50", 0, Decimal("12.50")),
    ],
)
def test_signed_zero_padded_and_implied_decimal_numbers(text, scale, expected):
    feed = feed_of(
        f"""
feeds:
  - name: n
    match: "in/*.txt"
    format: fixed_width
    key: {{pk: "N#{{id}}"}}
    fields:
      id: {{type: string, start: 1, width: 2}}
      value: {{type: decimal, start: 3, width: 10, scale: {scale}}}
      count: {{type: int, start: 13, width: 9}}
"""
    )
    integer = not scale and "." not in text
    records, _ = whole(feed, f"01{text:>10}{text if integer else '':>9}\n".encode())
    typed = typed_fields(feed, records[0].values)
    assert typed["value"] == expected and str(typed["value"]) == str(expected)
    assert typed.get("count") == (int(expected) if integer else None)


def test_bad_numbers_are_rejects_naming_the_line_and_field():
    data = file_of(
        [
            "H",
            detail("P1", "0000001234.5"),  # a decimal point in an implied-decimals field
            detail("P2", "00000000012A"),
            detail("P3", "000000000100", units="12-34"),
            "T000000003",
        ]
    )
    records, _ = whole(payments(), data)
    assert records[0].error == (
        "field 'amount': not a number of digits with 2 implied decimals: '0000001234.5'"
    )
    assert records[1].line == 3 and "field 'amount'" in (records[1].error or "")
    # the int field is a reject at typing: the reason names it
    with pytest.raises(Exception, match="field 'units': not an integer"):
        typed_fields(payments(), records[2].values)


def test_a_short_line_reads_missing_columns_as_empty():
    records, _ = whole(payments(), file_of(["H", "DP1", "T000000001"]))
    assert records[0].values == {"payment_id": "P1", "amount": "", "booked_on": "", "units": ""}
    with pytest.raises(Exception, match="field 'amount': required but empty"):
        typed_fields(payments(), records[0].values)


def entry(rows_ok: int, rows_rejected: int, declared: int | None) -> FileEntry:
    return FileEntry(
        key="k",
        status="PROCESSING",
        rows_ok=rows_ok,
        rows_rejected=rows_rejected,
        declared_records=declared,
    )


def test_the_trailer_count_check_gives_both_numbers():
    check = finish_check(payments())
    assert check is not None
    assert check(entry(2, 1, 3)) is None
    assert check(entry(2, 0, 3)) == (
        "the trailer declares 3 records but 2 were read (a truncated or padded delivery)"
    )
    assert "no trailer record" in (check(entry(2, 0, None)) or "")


def test_an_unreadable_trailer_count_fails_the_file():
    with pytest.raises(TrailerError, match=r"line 3: .*columns 2-10.*'00000000x'"):
        whole(payments(), file_of(["H", detail("P1", "1"), "T00000000x"]))


def test_a_file_of_only_a_header_declares_nothing():
    records, tally = whole(payments(), file_of(["H"]))
    assert records == [] and tally.declared is None


def test_feed_options_are_checked():
    with pytest.raises(ConfigError) as err:
        feed_of(
            """
feeds:
  - name: p
    match: "in/*.txt"
    format: fixed_width
    fixed_width: {trailer: {count_start: 2, count_width: 9}}
    key: {pk: "P#{id}"}
    fields:
      id: {type: string}
      amount: {type: int, scale: 2, start: 3, width: 4}
"""
        )
    messages = [e.message for e in err.value.errors]
    assert "'scale' (implied decimals) is for decimal fields" in messages
    assert any("set trailer_lines" in m for m in messages)


# --- chunked and whole-file parses agree --------------------------------------------------

line = st.one_of(
    st.builds(
        detail,
        st.text(alphabet="AB1é ", min_size=1, max_size=10).map(str.strip).filter(bool),
        st.integers(-(10**10), 10**11).map(lambda n: f"{abs(n):011d}{'-' if n < 0 else '+'}"),
    ),
    st.just("X other record"),
    st.just(""),
    st.just(detail("BAD", "12.4")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.integers(0, 2),
    body=st.lists(line, max_size=25),
    trailers=st.integers(0, 2),
    eol=st.sampled_from(["\n", "\r\n"]),
    chunk_size=st.integers(1, 200),
)
def test_chunked_and_whole_file_parses_agree(header, body, trailers, eol, chunk_size):
    feed = feed_of(
        PAYMENTS.replace("header_lines: 1", f"header_lines: {header}").replace(
            "trailer_lines: 1", f"trailer_lines: {max(trailers, 1)}"
        )
    )
    count = sum(1 for b in body if b.startswith("D"))
    tail = [f"T{count:09d}"] + ["Z" * (i + 1) for i in range(max(trailers, 1) - 1)]
    # the count goes in the file's last line
    tail.reverse()
    data = file_of([f"H{i}" for i in range(header)] + body + tail, eol)
    expected, whole_tally = whole(feed, data)
    assert whole_tally.declared == count
    chunks = plan(feed, data, chunk_size)
    got: list[ParsedRecord] = []
    skipped, declared = 0, []
    for chunk in chunks:
        records, tally = parse(feed, data, chunk, single=len(chunks) == 1)
        got.extend(records)
        skipped += tally.skipped
        if tally.declared is not None:
            declared.append(tally.declared)
    assert got == expected
    assert len(expected) == count
    assert skipped == whole_tally.skipped == sum(1 for b in body if b.startswith("X"))
    assert declared == [count]  # exactly one chunk declares the count
