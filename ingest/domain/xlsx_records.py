"""An xlsx workbook's sheet → records, read in constant memory with openpyxl's read-only mode.

openpyxl streams the sheet's XML row by row; what it holds is the shared-strings table and one
row. Cells come typed: text, numbers (``int``, or ``float`` for anything with a fraction or an
exponent), booleans, and ``datetime`` for date-formatted cells. A float is turned back into the
decimal Excel stored: its shortest round-trip text (``repr``), so ``0.1`` stays ``0.1`` rather
than ``0.1000000000000000055511151231257827``, kept to the 15 significant digits Excel holds (a
computed ``3.3000000000000003`` is Excel's ``3.3``). Dates and datetimes go to the field
converters as they are. A record's line is its spreadsheet row number.

An xlsx file is a zip container, which cannot be read from a byte range: it is one chunk, and
the processor hands this module a seekable local copy (:mod:`ingest.usecases.workbooks`).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import IO, Any

from ingest.domain.feed_types import Feed
from ingest.domain.lines import ParsedRecord
from ingest.errors import CorruptInputError, HeaderError

#: Excel keeps numbers to 15 significant digits.
_EXCEL_DIGITS = 15


def cell_value(value: Any) -> Any:
    """A cell's value as the field converters take it (floats as exact decimals)."""
    if type(value) is float:
        if value.is_integer() and abs(value) < 1e15:
            return int(value)
        text = repr(value)
        number = Decimal(text)
        if number.is_finite() and len(number.as_tuple().digits) > _EXCEL_DIGITS:
            number = Decimal(format(value, f".{_EXCEL_DIGITS}g"))
        return number
    if isinstance(value, str):
        return value.strip()
    return value


def column_letter(index: int) -> str:
    """``0`` → ``A``, ``26`` → ``AA``: Excel's name of a 0-based column."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _letter_index(name: str) -> int:
    """``A`` → 0, ``AA`` → 26; -1 for a name that is not a column letter."""
    if not (name.isascii() and name.isalpha() and name.isupper() and len(name) <= 3):
        return -1
    index = 0
    for char in name:
        index = index * 26 + ord(char) - ord("A") + 1
    return index - 1


def _raw(row: Sequence[Any]) -> str:
    """A row as the text a reject keeps: its cells, tab-separated (cheap: every row has one)."""
    return "\t".join(["" if c is None else str(c) for c in row])


def _sheet(book: Any, sheet: str | int | None, key: str) -> Any:
    names = book.sheetnames
    if sheet is None:
        sheet = 0
    if isinstance(sheet, int):
        if sheet >= len(names):
            raise CorruptInputError(
                f"the workbook has {len(names)} sheet(s) {names}, no sheet #{sheet}", key=key
            )
        return book[names[sheet]]
    if sheet not in names:
        raise CorruptInputError(f"the workbook has no sheet {sheet!r} (sheets: {names})", key=key)
    return book[sheet]


def _header(feed: Feed, row: Sequence[Any], number: int) -> list[str]:
    columns = ["" if c is None else str(cell_value(c)) for c in row]
    missing = [f.source for f in feed.fields if f.required and f.source not in columns]
    if missing:
        raise HeaderError(
            f"row {number}: the header has no column(s) {missing} that the feed requires "
            f"(header: {columns[:20]})"
        )
    sources = {f.source for f in feed.fields}
    repeated = sorted({c for c in columns if c in sources and columns.count(c) > 1})
    if repeated:
        raise HeaderError(
            f"row {number}: the header repeats column(s) {repeated} that the feed reads: "
            "which one holds the value is ambiguous"
        )
    return columns


def xlsx_records(feed: Feed, file: IO[bytes], *, key: str = "") -> Iterator[ParsedRecord]:
    """The records of the feed's sheet of a workbook (a seekable binary file)."""
    # only xlsx feeds pay for importing it (the processor's cold start does not)
    from openpyxl import load_workbook  # noqa: PLC0415

    opts = feed.xlsx
    try:
        book = load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise CorruptInputError(f"not a readable xlsx workbook: {exc}", key=key) from exc
    try:
        sheet = _sheet(book, opts.sheet, key)
        sources = {f.source for f in feed.fields}
        width: int | None = None  # the header's: a row with cells beyond it is a reject
        wanted: list[tuple[str, int]] = []  # (column, index) of the columns the feed reads
        if not opts.header:
            wanted = [(s, _letter_index(s)) for s in sources if _letter_index(s) >= 0]
        first = opts.header_row + 1 if opts.header else 1
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if opts.header and number == opts.header_row:
                columns = _header(feed, row, number)
                width = len(columns)
                wanted = [(c, i) for i, c in enumerate(columns) if c in sources]
                continue
            if number < first or row.count(None) + row.count("") == len(row):
                continue  # above the header, or an empty row: not a record
            if width is not None and len(row) > width and any(c is not None for c in row[width:]):
                yield ParsedRecord(
                    line=number,
                    raw=_raw(row),
                    error=f"row {number} has cells beyond the header's {width} columns",
                )
                continue
            size = len(row)
            values = {c: cell_value(row[i]) if i < size else None for c, i in wanted}
            yield ParsedRecord(line=number, raw=_raw(row), values=values)
        if opts.header and width is None:
            raise HeaderError(f"the sheet has no header row {opts.header_row} (it is empty)")
    finally:
        book.close()
