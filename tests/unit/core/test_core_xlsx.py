"""xlsx sheets → records: typed cells to our types (dates, datetimes, decimals without float
noise), empty cells and rows, a sheet by name or index, header rows, spreadsheet row numbers.
Workbooks are made here with openpyxl's write-only mode; none is committed."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from coreparse import feed_of
from openpyxl import Workbook

from ingest.domain.feeds import Feed
from ingest.domain.lines import ParsedRecord
from ingest.domain.records import typed_fields
from ingest.domain.xlsx_records import cell_value, column_letter, xlsx_records
from ingest.errors import ConfigError, CorruptInputError, HeaderError, RowError


def workbook(sheets: dict[str, list[list[Any]]]) -> io.BytesIO:
    book = Workbook(write_only=True)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    return out


def orders(xlsx: str = "{}") -> Feed:
    return feed_of(
        f"""
feeds:
  - name: orders
    match: "inbound/{{partner}}/orders/*.xlsx"
    format: xlsx
    xlsx: {xlsx}
    key: {{pk: "ORDER#{{order_id}}"}}
    fields:
      order_id: {{type: string, required: true}}
      amount: {{type: decimal}}
      quantity: {{type: int}}
      placed_on: {{type: date}}
      placed_at: {{type: timestamp}}
      note: {{type: string}}
"""
    )


HEADER = ["order_id", "amount", "quantity", "placed_on", "placed_at", "note"]


def parse(feed: Feed, data: io.BytesIO) -> list[ParsedRecord]:
    return list(xlsx_records(feed, data, key="inbound/acme/orders/x.xlsx"))


def typed(feed: Feed, records: list[ParsedRecord]) -> list[dict[str, Any]]:
    return [typed_fields(feed, r.values or {}) for r in records]


def test_typed_cells_become_our_types_without_float_noise():
    data = workbook(
        {
            "Orders": [
                HEADER,
                ["A1", 0.1, 3, dt.datetime(2024, 1, 31), dt.datetime(2024, 1, 31, 9, 30, 5), "x"],
                ["A2", 1.1 + 2.2, 4.0, dt.date(2024, 2, 1), dt.date(2024, 2, 1), 12.5],
                ["A3", 123456789.125, None, None, None, None],
                ["A4", "19.99", "7", "2024-03-01", "2024-03-01T10:00:00", None],
            ]
        }
    )
    feed = orders()
    records = parse(feed, data)
    assert [r.line for r in records] == [2, 3, 4, 5]
    got = typed(feed, records)
    assert got[0] == {
        "order_id": "A1",
        "amount": Decimal("0.1"),
        "quantity": 3,
        "placed_on": "2024-01-31",
        "placed_at": "2024-01-31T09:30:05",
        "note": "x",
    }
    assert str(got[0]["amount"]) == "0.1"
    assert got[1]["amount"] == Decimal("3.3") and str(got[1]["amount"]) == "3.3"
    assert got[1]["quantity"] == 4 and got[1]["placed_at"] == "2024-02-01T00:00:00"
    assert got[1]["note"] == "12.5"
    assert got[2] == {"order_id": "A3", "amount": Decimal("123456789.125")}  # empty cells
    assert got[3]["amount"] == Decimal("19.99") and got[3]["quantity"] == 7


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, Decimal("0.1")),
        (0.30000000000000004, Decimal("0.3")),
        (1e-7, Decimal("1E-7")),
        (2.5e20, Decimal("2.5E+20")),  # past 15 digits: a decimal, as Excel holds it
        (12.0, 12),
        (-0.5, Decimal("-0.5")),
        (True, True),
        ("  pad  ", "pad"),
    ],
)
def test_cell_values(value, expected):
    got = cell_value(value)
    assert got == expected and type(got) is type(expected)


def test_a_datetime_with_a_time_is_no_date_and_a_fraction_no_int():
    feed = orders()
    data = workbook({"S": [HEADER, ["A1", None, 2.5, dt.datetime(2024, 1, 31, 12, 0)]]})
    (record,) = parse(feed, data)
    with pytest.raises(RowError, match="field 'quantity': not an integer"):
        typed(feed, [record])
    values = {**(record.values or {}), "quantity": None}
    with pytest.raises(RowError, match="field 'placed_on': a date, not a date and time"):
        typed_fields(feed, values)


def test_a_second_sheet_by_name_or_index_and_a_later_header_row():
    sheets = {
        "Summary": [["ignore me"]],
        "Orders": [["Report of 2024-01-31"], [], HEADER, ["B1", 5], [], [None], ["B2", 6]],
    }
    for option in ("{sheet: Orders, header_row: 3}", "{sheet: 1, header_row: 3}"):
        records = parse(orders(option), workbook(sheets))
        assert [(r.line, (r.values or {})["order_id"]) for r in records] == [(4, "B1"), (7, "B2")]


def test_no_header_names_columns_by_letter():
    feed = feed_of(
        """
feeds:
  - name: plain
    match: "in/*.xlsx"
    format: xlsx
    xlsx: {header: false}
    key: {pk: "P#{id}"}
    fields:
      id: {type: string, column: A, required: true}
      total: {type: decimal, column: C}
"""
    )
    records = parse(feed, workbook({"S": [["x", "skip", 1.5], ["y", None, 2]]}))
    assert typed(feed, records) == [
        {"id": "x", "total": Decimal("1.5")},
        {"id": "y", "total": Decimal("2")},
    ]
    assert [column_letter(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]


def test_rejects_carry_row_numbers():
    feed = orders()
    data = workbook({"S": [HEADER, ["A1", "abc"], ["A2", 1, 2, 3, 4, 5, "extra"], [None, 1]]})
    records = parse(feed, data)
    assert records[1] == ParsedRecord(
        line=3,
        raw="A2\t1\t2\t3\t4\t5\textra",
        error="row 3 has cells beyond the header's 6 columns",
    )
    with pytest.raises(RowError, match="field 'amount': not a decimal: 'abc'"):
        typed(feed, [records[0]])
    assert records[0].line == 2
    with pytest.raises(RowError, match="field 'order_id': required but empty"):
        typed(feed, [records[2]])
    assert records[2].line == 4


def test_bad_workbooks_sheets_and_headers_fail_the_file():
    with pytest.raises(CorruptInputError, match="no sheet 'Nope'"):
        parse(orders("{sheet: Nope}"), workbook({"S": [HEADER]}))
    with pytest.raises(CorruptInputError, match="no sheet #3"):
        parse(orders("{sheet: 3}"), workbook({"S": [HEADER]}))
    with pytest.raises(CorruptInputError, match="not a readable xlsx workbook"):
        parse(orders(), io.BytesIO(b"order_id,amount\n1,2\n"))
    with pytest.raises(HeaderError, match=r"row 1: the header has no column\(s\) \['order_id'\]"):
        parse(orders(), workbook({"S": [["id", "amount"], ["1", 2]]}))
    with pytest.raises(HeaderError, match="no header row 1"):
        parse(orders(), workbook({"S": []}))


def test_options_are_checked():
    with pytest.raises(ConfigError, match=r"'xlsx\.header_row' is the row of column names"):
        orders("{header: false, header_row: 2}")
    with pytest.raises(ConfigError, match="'xlsx' options given for a csv feed"):
        feed_of(
            """
feeds:
  - name: c
    match: "in/*.csv"
    format: csv
    xlsx: {sheet: 1}
    key: {pk: "C#{id}"}
    fields: {id: string}
"""
        )
