"""xlsx: our path's rows/s against openpyxl's own read-only iteration of the same sheet, and
the peak RSS of each, on one workbook made for the run (about 50 MB by default).

* **openpyxl**: ``load_workbook(read_only=True, data_only=True)`` and
  ``iter_rows(values_only=True)`` over the sheet, touching every row: the floor our reader is
  built on;
* **ours**: ``ingest.domain.xlsx_records.xlsx_records`` over the same file (the header, empty
  rows, floats back to decimals, row numbers, each record's raw text): the xlsx path;
* **ours + items**: the same, each record then typed and made into its DynamoDB item
  (``build_item``), as the processor does before writing (that part is every format's);
* **baseline**: a child that imports the same modules and reads nothing: the RSS every child
  starts from.

Each case runs in a new interpreter (``multiprocessing`` spawn), which reports its own time and
``ru_maxrss``; the cases take turns for ``--runs`` rounds and the median counts. Rates are rows
per second of the child's CPU time (``process_time``: the work is one thread, and the machines
these run on are shared, so wall time swings with their load); wall time is printed beside.
The target is **ours** >= 0.8 x openpyxl's rows/s. Memory is reported, not asserted: read-only
mode holds one row and the workbook's shared-strings table (every distinct text cell, which
openpyxl loads whole).

    .venv/bin/python bench/xlsx.py               # --rows N (default 820,000: ~50 MB), --runs N (3)
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = __file__.rsplit("/bench/", 1)[0]
sys.path.insert(0, ROOT)

FEEDS = """
feeds:
  - name: stock
    match: "inbound/{partner}/stock/*.xlsx"
    format: xlsx
    xlsx: {sheet: Stock}
    key: {pk: "SKU#{sku}", sk: "PARTNER#{partner}"}
    fields:
      sku: {type: string, required: true}
      price: {type: decimal, required: true}
      units: {type: int}
      counted_on: {type: date}
      counted_at: {type: timestamp}
      note: {type: string}
      location: {type: string}
      supplier: {type: string}
"""
HEADER = ["sku", "price", "units", "counted_on", "counted_at", "note", "location", "supplier"]
MEASURED = ("openpyxl", "ours", "ours + items")
WORDS = [f"{w}{i}" for i in range(4000) for w in ("shelf ", "bin ", "aisle ")]


def make_workbook(path: str, rows: int) -> None:
    from openpyxl import Workbook

    rng = random.Random(12)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Stock")
    sheet.append(HEADER)
    start = dt.datetime(2024, 1, 1)
    for i in range(rows):
        when = start + dt.timedelta(seconds=i * 37)
        sheet.append(
            [
                f"SKU-{i:08d}",
                round(rng.uniform(0, 10_000), 2),
                rng.randrange(1000),
                dt.datetime(when.year, when.month, when.day),
                when,
                rng.choice(WORDS),
                f"warehouse {i % 97}, row {i % 1013}, shelf {i % 7}",
                f"supplier-{rng.randrange(100_000):06d}",
            ]
        )
    book.save(path)


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(case: str, path: str, out: Any) -> None:
    from openpyxl import load_workbook

    from ingest.domain.feeds import parse_feeds
    from ingest.domain.records import build_item
    from ingest.domain.xlsx_records import xlsx_records

    feed = parse_feeds(FEEDS).feeds[0]
    rows = 0
    started, cpu = time.perf_counter(), time.process_time()
    if case == "openpyxl":
        book = load_workbook(path, read_only=True, data_only=True)
        for row in book["Stock"].iter_rows(values_only=True):
            if row:
                rows += 1
        rows -= 1  # the header
        book.close()
    elif case == "ours":
        with open(path, "rb") as file:
            for record in xlsx_records(feed, file, key="x.xlsx"):
                assert record.values is not None, record.error
                rows += 1
    elif case == "ours + items":
        source = "s3://bench/inbound/shop/stock/x.xlsx"
        with open(path, "rb") as file:
            for record in xlsx_records(feed, file, key="x.xlsx"):
                assert record.values is not None, record.error
                build_item(
                    feed,
                    record.values,
                    captures={"partner": "shop"},
                    source_uri=source,
                    line=record.line,
                )
                rows += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    out.send((rows, cpu, _rss_mib(), elapsed))


def run_case(case: str, path: str) -> tuple[int, float, float, float]:
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child, args=(case, path, send))
    proc.start()
    result: tuple[int, float, float, float] = receive.recv()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=820_000)  # about 50 MB
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "stock.xlsx")
        made = time.perf_counter()
        make_workbook(path, args.rows)
        size = os.path.getsize(path)
        print(
            f"workbook: {args.rows:,} rows x {len(HEADER)} columns, {size / 1e6:.1f} MB "
            f"(made in {time.perf_counter() - made:.0f} s)"
        )
        results: dict[str, list[tuple[int, float, float, float]]] = {}
        for _ in range(args.runs):
            for case in ("baseline", *MEASURED):
                results.setdefault(case, []).append(run_case(case, path))
    base_rss = statistics.median(r[2] for r in results["baseline"])
    rates: dict[str, float] = {}
    print(
        f"\n{'case':<14} {'rows':>10} {'CPU s':>8} {'rows/CPU s':>11} {'wall s':>8} "
        f"{'peak RSS MiB':>13}"
    )
    for case in MEASURED:
        runs = results[case]
        rows = runs[0][0]
        assert all(r[0] == args.rows for r in runs), (case, [r[0] for r in runs])
        seconds = statistics.median(r[1] for r in runs)
        wall = statistics.median(r[3] for r in runs)
        rss = max(r[2] for r in runs)
        rates[case] = rows / seconds
        print(
            f"{case:<14} {rows:>10,} {seconds:>8.2f} {rates[case]:>11,.0f} {wall:>8.2f} "
            f"{rss:>13.1f}"
        )
    print(f"{'baseline':<14} {'':>10} {'':>8} {'':>11} {'':>8} {base_rss:>13.1f}")
    ratio = rates["ours"] / rates["openpyxl"]
    verdict = "meets" if ratio >= 0.8 else "misses"
    print(f"\nours / openpyxl rows/s: {ratio:.2f} x ({verdict} the 0.8 x target)")
    items = rates["ours + items"] / rates["openpyxl"]
    print(f"ours + items / openpyxl rows/s: {items:.2f} x")
    for case in MEASURED:
        rss = max(r[2] for r in results[case])
        print(f"{case} peak RSS above the baseline child: {rss - base_rss:.1f} MiB")


if __name__ == "__main__":
    main()
