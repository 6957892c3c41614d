"""xlsx workbooks end to end through the real fanout and processor handlers (moto): one chunk
whatever the chunk size, typed cells stored as our types, rejects with spreadsheet rows."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import Workbook
from support_deliveries import STOCK_FEED, stock_workbook

ROWS = 300


@pytest.fixture
def feeds_yaml(feeds_yaml: str) -> str:
    # the shared stock feed, with a chunk size smaller than its workbooks (which are one chunk)
    return feeds_yaml + STOCK_FEED.replace(
        "    format: xlsx\n", "    format: xlsx\n    chunk_size: 1KiB\n"
    )


def test_a_workbook_lands_as_one_chunk_with_typed_values(pipeline):
    key = "inbound/shop/stock/2024-01.xlsx"
    data = stock_workbook(ROWS)
    assert len(data) > 1024  # larger than the feed's chunk size, yet one chunk
    result = pipeline.land(key, data)
    assert result["files"][0]["chunks"] == 1
    assert pipeline.drain().failed == 0

    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected, entry.chunks_done) == (
        "PROCESSED_WITH_REJECTS",
        ROWS - 1,
        1,
        1,
    )
    items = {item["sku"]: item for item in pipeline.items()}
    assert len(items) == ROWS - 1
    assert items["S0001"]["price"] == Decimal("0.1")
    assert items["S0003"]["price"] == Decimal("0.3")  # 3 * 0.1 is 0.30000000000000004
    assert items["S0003"]["units"] == 3
    assert items["S0003"]["counted_on"] == "2024-01-04"
    assert items["S0003"]["counted_at"] == "2024-01-04T09:00:03"
    # rows are spreadsheet rows: a title, the header, then S0000 on row 3
    assert items["S0000"]["_line"] == 3
    assert items["S0101"]["_line"] == 3 + 101 + 1  # after the empty row
    rejects = pipeline.rejects(key)
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (10, "field 'price': not a decimal: 'n/a'")
    ]


def test_a_missing_sheet_fails_the_file(pipeline):
    key = "inbound/shop/stock/wrong.xlsx"
    book = Workbook(write_only=True)
    book.create_sheet("Other").append(["sku"])
    out = io.BytesIO()
    book.save(out)
    pipeline.land(key, out.getvalue())
    pipeline.drain()
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    assert "the workbook has no sheet 'Stock' (sheets: ['Other'])" in (entry.reason or "")
