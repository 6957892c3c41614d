"""Benchmark of the core ingestion path (issue 2): records/s and peak RSS of the processor.

Everything runs against one moto server (``ThreadedMotoServer`` in a child process) holding a
versioned landing bucket, the ingest queue with its DLQ, and the records and ledger tables.

1. Throughput. A generated CSV (default 1,000,000 rows, ~100 MB) is uploaded and taken through
   the real FanoutFunction handler (in this process) and the real ProcessorFunction handler
   (in worker processes fed by the local Lambda service's SQS event source). Beside it, in the
   same run and against the same moto, the peers write the same items, pre-built with the
   core's parser (not timed): (a) the raw limit, boto3's ``batch_writer``, with as many
   processes as the processor has workers, run once before
   and once after the processor so a drift in the machine's load shows; (b) the reference
   loop (``bench/reference_loop.py``: the plain, correct csv → ``batch_write_item`` loop),
   also before and after, whose CPU per row (its own process, HTTP included) the
   processor's is compared to (issue 10: at most 0.8 x); (c) a naive ``put_item`` per row, on the
   first ``--naive-rows`` rows, extrapolated.
2. Memory. The processor's peak RSS while it processes every chunk of a ~10 MiB and a ~1 GiB
   file, each in a fresh worker process, so that the peak is that run's own.

Run ``python bench/processor.py --help`` for the knobs; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from moto_server import moto_server
from processor_data import MIB, orders_csv, wide_csv
from processor_rig import Bench, deploy, fake_credentials, rates, run_processor, run_writers

HERE = Path(__file__).resolve().parent
PARTNER = "acme"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the throughput file")
    p.add_argument(
        "--raw-rows",
        type=int,
        default=100_000,
        help="rows per raw-limit run (one before, one after)",
    )
    p.add_argument("--naive-rows", type=int, default=10_000, help="rows for naive put_item")
    p.add_argument("--workers", type=int, default=1, help="processor workers = raw writers")
    p.add_argument("--chunk-mib", type=int, default=16, help="fanout chunk size (MiB)")
    p.add_argument("--rss-small-mib", type=int, default=10)
    p.add_argument("--rss-large-mib", type=int, default=1024)
    p.add_argument("--rss-row-bytes", type=int, default=8192, help="row width of RSS files")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-rss", action="store_true")
    p.add_argument("--skip-1gb", action="store_true", help="measure RSS for the small file only")
    p.add_argument("--data-dir", type=Path, default=HERE / ".data" / "processor")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--profile-dir", type=Path, help="cProfile each worker's measured section")
    return p


def _rate(name: str, r: dict[str, Any]) -> None:
    print(
        f"  {name:<44} {r['rows']:>9,} rows {r['seconds']:>8.1f} s {r['rows_per_s']:>7,.0f}/s"
        f" | CPU: ours {r['client_cpu_s']:>7.1f} s + moto {r['moto_cpu_s']:>7.1f} s"
        f" = {r['rows_per_cpu_s']:>6,.0f} rows/CPU-s",
        flush=True,
    )


def _combined(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two runs of a peer as one: rows and seconds added up."""
    rows = a["rows"] + b["rows"]
    total = {k: a[k] + b[k] for k in ("seconds", "client_cpu_s", "moto_cpu_s")}
    return {
        "rows": rows,
        "workers": a["workers"],
        **rates(rows, total["seconds"], total["client_cpu_s"], total["moto_cpu_s"]),
    }


#: the template's defaults (template.yaml): ProcessorMaxConcurrency, ChunkSizeMiB
TEMPLATE_CONCURRENCY = 10
TEMPLATE_CHUNK_MIB = 16


def _cpu_per_row(
    proc: dict[str, Any], reference: dict[str, Any], row_bytes: float, out: dict[str, Any]
) -> None:
    """Our process's CPU per row (all its threads), the processor against the reference, and
    what it means for one Lambda vCPU: rows/s, and a 1 GB file of these rows at the
    template's default concurrency and chunk size (CPU-bound: DynamoDB's latency overlapped
    by the writer threads)."""
    ours = proc["client_cpu_s"] / proc["rows"] * 1e6
    ref = reference["client_cpu_s"] / reference["rows"] * 1e6
    verdict = "MET" if ours <= 0.8 * ref else "MISSED"
    print(
        f"  CPU per row (our process only): processor {ours:,.1f} us, reference loop "
        f"{ref:,.1f} us = {ours / ref:.2f} x (target <= 0.80: {verdict})",
        flush=True,
    )
    chunks = math.ceil(1e9 / (TEMPLATE_CHUNK_MIB * MIB))
    chunk_s = TEMPLATE_CHUNK_MIB * MIB / row_bytes * ours / 1e6
    waves = math.ceil(chunks / TEMPLATE_CONCURRENCY)
    one_gb_s = waves * chunk_s
    out["cpu_us_per_row"] = {
        "processor": ours,
        "reference": ref,
        "ratio": ours / ref,
        "vcpu_rows_per_s": 1e6 / ours,
        "one_gb_seconds": one_gb_s,
    }
    print(
        f"  one vCPU at this CPU per row: processor {1e6 / ours:,.0f} rows/s, reference "
        f"{1e6 / ref:,.0f} rows/s",
        flush=True,
    )
    print(
        f"  a 1 GB file of these {row_bytes:.0f}-byte rows: {chunks} chunks of "
        f"{TEMPLATE_CHUNK_MIB} MiB, {chunk_s:.0f} s each at one vCPU, {waves} waves of "
        f"{TEMPLATE_CONCURRENCY} invocations = about {one_gb_s:.0f} s",
        flush=True,
    )


def throughput(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """Raw limit, processor, raw limit again (bracketing drifts in load), then naive.

    With one worker everything is sequential, like one Lambda instance: compare it to one
    raw writer. ``--workers N`` gives both sides N processes (like Lambda concurrency N).
    """
    path = orders_csv(bench.data, args.rows)
    key = f"inbound/{PARTNER}/orders/bench-{args.rows}.csv"
    print(f"throughput input: {path.name}, {path.stat().st_size / MIB:,.1f} MiB", flush=True)
    n = args.workers
    raw_rows = min(args.raw_rows, args.rows)
    before = run_writers(bench, "batch", path, key, rows=raw_rows, workers=n)
    _rate(f"raw limit (before): batch_writer, {n} process(es)", before)
    ref_before = run_writers(bench, "reference", path, key, rows=raw_rows, workers=1)
    _rate("reference loop (before): csv -> batch_write_item", ref_before)
    proc = run_processor(bench, path, key, args.rows, n)
    _rate(f"processor: fanout + {n} worker(s), {proc['chunks']} chunk(s)", proc)
    ref_after = run_writers(bench, "reference", path, key, rows=raw_rows, workers=1)
    _rate("reference loop (after): csv -> batch_write_item", ref_after)
    after = run_writers(bench, "batch", path, key, rows=raw_rows, workers=n)
    _rate(f"raw limit (after): batch_writer, {n} process(es)", after)
    raw = _combined(before, after)
    _rate("raw limit (before + after)", raw)
    reference = _combined(ref_before, ref_after)
    _rate("reference loop (before + after)", reference)
    out: dict[str, Any] = {
        "processor": proc,
        "raw_before": before,
        "raw_after": after,
        "raw": raw,
        "reference": reference,
    }
    _cpu_per_row(proc, reference, path.stat().st_size / args.rows, out)
    if not args.skip_naive:
        naive_rows = min(args.naive_rows, args.rows)
        out["naive"] = naive = run_writers(bench, "put", path, key, rows=naive_rows, workers=1)
        _rate("naive: put_item per row, 1 process", naive)
        print(
            f"  naive extrapolated to {args.rows:,} rows: {args.rows / naive['rows_per_s']:,.0f} s;"
            f" raw limit / naive = {raw['rows_per_s'] / naive['rows_per_s']:.1f}x,"
            f" processor / naive = {proc['rows_per_s'] / naive['rows_per_s']:.1f}x"
        )
    out["ratio"] = ratio = proc["rows_per_s"] / raw["rows_per_s"]
    out["cpu_ratio"] = cpu_ratio = proc["rows_per_cpu_s"] / raw["rows_per_cpu_s"]
    verdict = "MET" if ratio >= 1.0 else "MISSED"
    print(f"  processor / raw limit = {ratio:.2f} wall-clock (target >= 1.00: {verdict})")
    print(f"  processor / raw limit = {cpu_ratio:.2f} per CPU second (ours + moto's)")
    print(
        f"  processor peak RSS on this {args.rows:,}-row file: {max(proc['rss_mib']):.0f} MiB",
        flush=True,
    )
    return out


def memory(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of one processor worker taking every chunk of a small, then a large file."""
    sizes = [args.rss_small_mib] + ([] if args.skip_1gb else [args.rss_large_mib])
    runs: dict[str, Any] = {}
    for mib in sizes:
        path, rows = wide_csv(bench.data, mib * MIB, args.rss_row_bytes)
        key = f"inbound/{PARTNER}/orders-wide/rss-{mib}MiB.csv"
        run = run_processor(bench, path, key, rows, workers=1)
        runs[str(mib)] = run
        print(
            f"  {mib:>5} MiB input ({rows:,} rows of {args.rss_row_bytes} B, {run['chunks']} "
            f"chunks): peak RSS {run['rss_mib'][0]:.1f} MiB (after imports "
            f"{run['rss_ready_mib'][0]:.1f} MiB), {run['rows_per_s']:,.0f} rows/s",
            flush=True,
        )
    if len(sizes) == 2:
        small, large = (runs[str(m)]["rss_mib"][0] for m in sizes)
        verdict = "MET" if large <= small + 64 else "MISSED"
        print(f"  large - small = {large - small:+.1f} MiB (target <= +64 MiB: {verdict})")
    return runs


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures side by side."""
    args = _parser().parse_args(argv)
    data: Path = args.data_dir
    data.mkdir(parents=True, exist_ok=True)
    fake_credentials()
    figures: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    started = time.monotonic()
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    with moto_server(data / "moto.log") as moto, (data / "bench.log").open("a") as log:
        bench = deploy(moto, data, args.chunk_mib, log)
        bench.profile_dir = args.profile_dir
        if not args.skip_throughput:
            print("== throughput (records/s), same moto server, side by side ==", flush=True)
            figures["throughput"] = throughput(bench, args)
        if not args.skip_rss:
            print("== processor peak RSS, one worker process per input ==", flush=True)
            figures["rss"] = memory(bench, args)
        figures["moto_peak_rss_mib"] = moto.peak_rss_mib()
    figures["wall_seconds"] = time.monotonic() - started
    print(f"total {figures['wall_seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
