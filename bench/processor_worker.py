"""Worker processes for ``bench/processor.py``; each measurement runs in its own process.

Modes:

* ``drain``: play one Lambda worker of ProcessorFunction. The handler is found by its
  ``Handler`` string (``lambdas.processor.handler``) and fed SQS batches by the local Lambda
  service's ``SqsEventSource`` until the queue is empty. Its own ``ru_maxrss`` is the
  processor's peak RSS.
* ``batch`` / ``put``: the peers. Items are pre-built from the same CSV with the core's own
  parser and ``build_item`` (not timed), then written to the records table with boto3's
  ``batch_writer`` (``overwrite_by_pkeys``, as the processor's rows need) or with one
  ``put_item`` per row.

Protocol with the parent: after setting up, a worker prints ``READY {json}`` and waits for a
``GO`` line on stdin, so that start-up and pre-building stay out of the timed section; at the
end it prints ``RESULT {json}`` with wall-clock start/end (``time.time``) and its peak RSS.
Everything else the worker prints (Powertools logs and metrics) goes to ``--log``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from reference_loop import write_csv

from ingest.adapters.aws import AwsTarget
from ingest.domain.feeds import load_feeds
from ingest.domain.formats import parse_records
from ingest.domain.lines import iter_lines
from ingest.domain.records import build_item
from ingest_local.lambda_service import SqsEventSource, in_process_invoker, load_handler

PROCESSOR_HANDLER = "lambdas.processor.handler"
#: the processor's timeout in template.yaml is at most Lambda's 15 minutes
LAMBDA_TIMEOUT = 900.0


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB.

    ``VmHWM`` (Linux) rather than ``ru_maxrss``: Linux carries a parent's high-water mark
    across fork + exec into the child's ``ru_maxrss``, so a big parent would inflate it.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _handshake(proto: IO[str], info: dict[str, Any]) -> None:
    proto.write("READY " + json.dumps({**info, "rss_kib": peak_rss_kib()}) + "\n")
    proto.flush()
    line = sys.stdin.readline().strip()
    if line != "GO":
        raise SystemExit(f"expected GO from the benchmark, got {line!r}")


Run = Callable[[], dict[str, Any]]


def _drain(args: argparse.Namespace) -> tuple[dict[str, Any], Run]:
    target = AwsTarget(region=args.region, endpoint_url=args.endpoint)
    handler = load_handler(PROCESSOR_HANDLER)
    source = SqsEventSource(
        target.client("sqs"),
        args.queue_url,
        args.queue_arn,
        in_process_invoker(handler, "ProcessorFunction", timeout=LAMBDA_TIMEOUT),
        batch_size=args.batch_size,
        region=args.region,
    )

    def run() -> dict[str, Any]:
        received = succeeded = failed = 0
        errors: list[str] = []
        while True:
            poll = source.poll_once(wait_seconds=1)
            received += poll.received
            succeeded += poll.succeeded
            failed += poll.failed
            if poll.error:
                errors.append(poll.error)
            if poll.failed:
                # A failed chunk would only come back after the queue's long visibility
                # timeout: stop and report it rather than wait.
                break
            if not poll.received and source.queue_depth() == (0, 0):
                break
        return {"messages": received, "succeeded": succeeded, "failed": failed, "errors": errors}

    return {"mode": "drain"}, run


def prebuilt_items(
    path: Path, feeds_path: Path, key: str, source_uri: str, *, part: int, parts: int, limit: int
) -> Iterator[dict[str, Any]]:
    """The items the processor builds for ``key``, from a local copy of the file.

    Every ``parts``-th good record starting at ``part`` (round robin), at most ``limit``
    records in all (before the split); rejected rows are skipped, as the processor does.
    """
    match = load_feeds(feeds_path).resolve(key)
    if match is None:
        raise SystemExit(f"no feed in {feeds_path} matches {key}")
    with path.open("rb") as stream:
        lines = iter_lines(stream, start=0, end=None, first_line=1)
        for n, record in enumerate(parse_records(match.feed, lines, owns_file_start=True)):
            if n >= limit:
                return
            if n % parts != part or record.values is None:
                continue
            yield build_item(
                match.feed,
                record.values,
                captures=match.captures,
                source_uri=source_uri,
                line=record.line,
            )


def _reference(args: argparse.Namespace) -> tuple[dict[str, Any], Run]:
    import boto3  # the reference loop uses plain boto3, as a user would

    client = boto3.client("dynamodb", region_name=args.region, endpoint_url=args.endpoint)

    def run() -> dict[str, Any]:
        items = write_csv(
            client, args.table, Path(args.file), source_uri=args.source_uri, limit=args.limit
        )
        return {"items": items}

    return {"mode": "reference"}, run


def _write(args: argparse.Namespace) -> tuple[dict[str, Any], Run]:
    items = list(
        prebuilt_items(
            Path(args.file),
            Path(args.feeds),
            args.key,
            args.source_uri,
            part=args.part,
            parts=args.parts,
            limit=args.limit,
        )
    )
    table = AwsTarget(region=args.region, endpoint_url=args.endpoint).resource("dynamodb")
    table = table.Table(args.table)

    def run() -> dict[str, Any]:
        if args.mode == "batch":
            with table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
                for item in items:
                    writer.put_item(Item=item)
            return {"items": len(items)}
        for item in items:
            table.put_item(Item=item)
        return {"items": len(items)}

    return {"mode": args.mode, "items": len(items)}, run


def _timed(run: Run, profile: str | None) -> dict[str, Any]:
    """Run the measured section: wall-clock bounds, CPU seconds, optionally a cProfile."""
    profiler = cProfile.Profile() if profile else None
    cpu0, start = cpu_seconds(), time.time()
    if profiler:
        profiler.enable()
    result = run()
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    return {**result, "start": start, "end": time.time(), "cpu": cpu_seconds() - cpu0}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["drain", "batch", "put", "reference"])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--log", required=True, help="file for everything but the protocol lines")
    p.add_argument("--queue-url")
    p.add_argument("--queue-arn")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--file", help="local copy of the landed CSV")
    p.add_argument("--feeds", help="feeds YAML")
    p.add_argument("--key", help="S3 key of the landed file (selects the feed)")
    p.add_argument("--source-uri")
    p.add_argument("--table")
    p.add_argument("--part", type=int, default=0)
    p.add_argument("--parts", type=int, default=1)
    p.add_argument("--limit", type=int, default=sys.maxsize)
    p.add_argument("--profile", help="write a cProfile of the measured section here")
    return p


def main(argv: list[str] | None = None) -> None:
    """Run one worker; protocol lines go to the original stdout, everything else to --log."""
    args = _parser().parse_args(argv)
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    with open(args.log, "ab") as log:
        sys.stdout.flush()
        os.dup2(log.fileno(), sys.stdout.fileno())
        build = {"drain": _drain, "reference": _reference}.get(args.mode, _write)
        info, run = build(args)
        _handshake(proto, info)
        result = _timed(run, args.profile)
    result["rss_kib"] = peak_rss_kib()
    proto.write("RESULT " + json.dumps(result) + "\n")
    proto.flush()


if __name__ == "__main__":
    main()
