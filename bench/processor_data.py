"""Generated inputs for ``bench/processor.py``: the feeds and deterministic order files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

MIB = 1024 * 1024
#: part of generated file names: bump it when the rows change, so stale files are not reused
GENERATION = 2

FIELDS = """
      order_id: {type: string, required: true}
      amount: {type: decimal, required: true}
      quantity: {type: int}
      placed_at: {type: timestamp}
      customer: {type: string}
      sku: {type: string}
      status: {type: string}"""

FEEDS_YAML = f"""
feeds:
  - name: orders
    match: "inbound/{{partner}}/orders/*.csv"
    format: csv
    csv: {{delimiter: ",", header: true}}
    key: {{pk: "ORDER#{{order_id}}", sk: "PARTNER#{{partner}}"}}
    fields:{FIELDS}
  # The same records with a wide column that no field declares (kept in the file, not stored).
  - name: orders_wide
    match: "inbound/{{partner}}/orders-wide/*.csv"
    format: csv
    csv: {{delimiter: ",", header: true}}
    key: {{pk: "ORDER#{{order_id}}", sk: "PARTNER#{{partner}}"}}
    fields:{FIELDS}
"""

HEADER = "order_id,amount,quantity,placed_at,customer,sku,status"
_STATUSES = ("confirmed", "shipped", "delivered", "cancelled")
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def order_row(i: int) -> str:
    """Row ``i`` of the generated orders file (deterministic, about 100 bytes)."""
    placed = (_EPOCH + dt.timedelta(seconds=i * 7, milliseconds=i % 1000)).isoformat(
        timespec="milliseconds"
    )
    amount = f"{(i * 7919) % 1_000_000 / 100:.2f}"
    return (
        f"ORDER-{i:010d},{amount},{i % 17 + 1},{placed},CUSTOMER-{i * 31 % 1_000_003:08d},"
        f"SKU-{i * 13 % 99_991:012d},{_STATUSES[i % 4]}"
    )


def _write_atomically(path: Path, lines: Iterable[str]) -> Path:
    if path.exists():
        return path  # generated deterministically: a complete earlier file is the same file
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n", buffering=4 * MIB) as out:
        out.writelines(lines)
    tmp.rename(path)
    return path


def orders_csv(data: Path, rows: int) -> Path:
    """The throughput input: a header and ``rows`` order rows."""

    def lines() -> Iterable[str]:
        yield HEADER + "\n"
        for i in range(rows):
            yield order_row(i) + "\n"

    return _write_atomically(data / f"orders-g{GENERATION}-{rows}.csv", lines())


def wide_csv(data: Path, size: int, row_bytes: int) -> tuple[Path, int]:
    """A file of about ``size`` bytes whose rows are ``row_bytes`` long (padded ``notes``)."""
    rows = max(1, size // row_bytes)

    def lines() -> Iterable[str]:
        yield HEADER + ",notes\n"
        for i in range(rows):
            row = order_row(i) + ","
            yield row + "n" * max(0, row_bytes - len(row) - 1) + "\n"

    name = f"wide-g{GENERATION}-{size // MIB}MiB-{row_bytes}B.csv"
    return _write_atomically(data / name, lines()), rows
