"""``ingest status`` (every file the ledger knows, filtered, newest first), ``ingest status
KEY`` (one file in full) and ``ingest rejects KEY`` (a file's rejected rows)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ingest.adapters.dynamo import from_item
from ingest.adapters.leases import ChunkLeases
from ingest.adapters.ledger import Ledger
from ingest.adapters.ledger_envelopes import EnvelopeLedger
from ingest.adapters.ledger_items import SOURCE_PREFIX
from ingest.adapters.ledger_versions import all_superseded, superseded_versions
from ingest.adapters.s3 import S3Store
from ingest.cli.context import Deployment, add_target_arguments, resolve_deployment
from ingest.cli.dlq import dead_letters
from ingest.cli.output import print_table
from ingest.domain.files import FileEntry, SupersededVersion
from ingest.errors import UnknownFileError
from ingest.usecases.inspection import (
    FileFilter,
    age,
    chunk_states,
    dead_letter_report,
    iso_time,
    newest_first,
    parse_since,
    read_rejects,
    transfer_sources,
)

_SUPERSEDED_COLUMNS = (
    "version",
    "status",
    "rows_ok",
    "rows_rejected",
    "chunks_done",
    "chunks",
    "superseded_by",
)


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="every landed file and what happened to it (the ledger), newest first"
    )
    status.add_argument(
        "key", nargs="?", help="one file in full: versions, chunks, rejects, DLQ messages"
    )
    add_target_arguments(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--prefix", default="", help="only keys under this prefix")
    status.add_argument("--partner", help="only this partner's files (inbound/<partner>/…)")
    status.add_argument("--feed", help="only this feed's files")
    status.add_argument(
        "--status",
        action="append",
        dest="statuses",
        metavar="STATUS",
        help="only files in this status (repeat for several)",
    )
    status.add_argument(
        "--since", help="only files received since: a duration (90m, 2h, 7d) or an ISO date"
    )
    status.set_defaults(func=cmd_status)

    rejects = subparsers.add_parser("rejects", help="a file's rejected rows: line, reason, raw")
    rejects.add_argument("key", help="the landed file's S3 key")
    rejects.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    add_target_arguments(rejects)
    rejects.add_argument("--json", action="store_true", help="print one JSON object")
    rejects.set_defaults(func=cmd_rejects)


def status_json(
    entry: FileEntry, superseded: list[SupersededVersion] | None = None
) -> dict[str, Any]:
    """The ``ingest status --json`` contract (docs/contracts.md), with the failure reason and
    the versions of the key that this one replaced (their rows are not counted)."""
    data = entry.to_json()
    return {
        "key": data["key"],
        "partner": entry.partner,
        "feed": data["feed"],
        "status": data["status"],
        "rows_ok": data["rows_ok"],
        "rows_rejected": data["rows_rejected"],
        "chunks": data["chunks"],
        "chunks_done": data["chunks_done"],
        "size": data["size"],
        "etag": data["etag"],
        "reason": data["reason"],
        "received_at": iso_time(entry.received_at),
        "updated_at": iso_time(entry.updated_at),
        "superseded": [_superseded_json(s) for s in superseded or []],
        # an envelope's (EXPANDED): what it wrote (the first keys; ingest status KEY: all)
        **(
            {"output_count": entry.output_count, "outputs": entry.outputs or []}
            if entry.output_count is not None
            else {}
        ),
        # the admission gates': the content digest, the earlier file of a duplicate, the
        # sidecar or marker that confirmed it, and on a sidecar's own entry the file it is about
        **{name: data[name] for name in _GATE_FIELDS if data.get(name) is not None},
        # an expected-file deadline's (MISSING, LATE): the deadline, the counts, the late files
        **(
            {"expectation": {k: v for k, v in entry.expectation.items() if k != "notified"}}
            if entry.expectation is not None
            else {}
        ),
    }


#: set only when a gate recorded them (docs/contracts.md)
_GATE_FIELDS = ("digest", "duplicate_of", "confirmed_by", "sidecar_for")


def _superseded_json(record: SupersededVersion) -> dict[str, Any]:
    data = record.to_json()
    return {name: data[name] for name in _SUPERSEDED_COLUMNS}


def cmd_status(args: argparse.Namespace) -> int:
    if args.key:
        return _one_file(args)
    now = time.time()
    selected = FileFilter(
        partner=args.partner,
        feed=args.feed,
        statuses=frozenset(args.statuses or ()),
        since=parse_since(args.since, now=now) if args.since else None,
        prefix=args.prefix,
    )
    deployment = resolve_deployment(args)
    ledger = Ledger(deployment.aws.client("dynamodb"), deployment.resource("ledger_table"))
    entries = newest_first(ledger.list_files(), selected)
    superseded = all_superseded(ledger)
    files = [status_json(e, superseded.get(e.key)) for e in entries]
    if args.json:
        json.dump(files, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print_table(
        [_status_row(e, now) for e in entries],
        ["PARTNER", "FEED", "KEY", "STATUS", "ROWS OK", "REJECTED", "CHUNKS", "AGE", "REASON"],
        empty="no files yet" if selected == FileFilter() else "no files match",
    )
    replaced = [{"key": f["key"], **s} for f in files for s in f["superseded"]]
    if replaced:
        print("\nreplaced by a newer version (their rows are not counted above):")
        columns = ("key", *_SUPERSEDED_COLUMNS)
        print_table([[r[c] for c in columns] for r in replaced], [c.upper() for c in columns])
    return 0


def _status_row(entry: FileEntry, now: float) -> list[Any]:
    received = entry.received_at if entry.received_at is not None else entry.updated_at
    return [
        entry.partner,
        entry.feed,
        entry.key,
        entry.status,
        entry.rows_ok,
        entry.rows_rejected,
        f"{entry.chunks_done}/{entry.chunks}",
        age(received, now=now),
        entry.reason,
    ]


def cmd_rejects(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args)
    store = S3Store(deployment.aws.client("s3"))
    found = read_rejects(store, deployment.resource("bucket"), args.key, limit=args.limit)
    if args.json:
        payload = {
            "key": args.key,
            "files": found.files,
            "rejects": found.rows,
            "truncated": found.truncated,
        }
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print_table(
        [[r.get("line"), r.get("reason"), r.get("raw")] for r in found.rows],
        ["LINE", "REASON", "RAW"],
        empty=f"no rejected rows for {args.key}",
    )
    if found.truncated:
        print(f"(the first {args.limit}; --limit N for more)")
    return 0


def file_story(deployment: Deployment, key: str) -> dict[str, Any]:
    """``ingest status KEY --json``: the file's entry, the versions it replaced, its chunks,
    its first rejects, its DLQ messages and the connector transfers that brought it."""
    client = deployment.aws.client("dynamodb")
    ledger = Ledger(client, deployment.resource("ledger_table"))
    entry = ledger.get_file(key)
    if entry is None:
        raise UnknownFileError(f"the ledger has no entry for {key!r} (see ingest status)")
    done = ledger.done_chunks(key, entry.version, entry.ingestion) if entry.version else set()
    leases = ChunkLeases(client, deployment.resource("ledger_table")).live(key)
    writing = {
        lease.index
        for lease in leases
        if (lease.version, lease.ingestion) == (entry.version, entry.ingestion)
    }
    rejects = read_rejects(
        S3Store(deployment.aws.client("s3")), deployment.resource("bucket"), key, limit=20
    )
    letters = dead_letter_report(dead_letters(deployment).peek(), ledger)
    sources = transfer_sources(from_item(i) for i in ledger.query_items(key, SOURCE_PREFIX))
    envelopes = EnvelopeLedger(ledger)
    outputs = (
        envelopes.all_outputs(key, entry.version, entry.outputs or [])
        if entry.output_count is not None and entry.version
        else []
    )
    return {
        **status_json(entry, superseded_versions(ledger, key)),
        **({"outputs": outputs} if outputs else {}),
        # the envelopes (zip archives) this file was written from: the chain back to the partner
        "envelopes": envelopes.envelopes_of(key),
        # fixed-width: lines of other record types, and the record count the trailer declares
        "records_skipped": entry.records_skipped,
        "declared_records": entry.declared_records,
        "source": sources,
        "chunk_states": chunk_states(entry, done=done, writing=writing),
        "reject_files": rejects.files,
        "first_rejects": [{"line": r.get("line"), "reason": r.get("reason")} for r in rejects.rows],
        "rejects_truncated": rejects.truncated,
        "dead_letters": [
            {
                "message_id": d.message_id,
                "chunk": d.chunk,
                "receive_count": d.receive_count,
                "first_failure_at": iso_time(d.first_failure_at),
                "last_failure_at": iso_time(d.last_failure_at),
                "last_error": d.last_error,
            }
            for d in letters
            if d.key == key
        ],
    }


def _one_file(args: argparse.Namespace) -> int:
    story = file_story(resolve_deployment(args), args.key)
    if args.json:
        json.dump(story, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    fields = (
        "key",
        "partner",
        "feed",
        "status",
        "rows_ok",
        "rows_rejected",
        "records_skipped",
        "declared_records",
        "chunks_done",
        "chunks",
        "size",
        "etag",
        "received_at",
        "updated_at",
        "reason",
    )
    gated = [name for name in _GATE_FIELDS if name in story]
    print_table([[name, story[name]] for name in (*fields, *gated)], ["FIELD", "VALUE"])
    for source in story["source"]:
        print(
            f"Source: connector {source['connector_id']}, transfer {source['transfer_id']}, "
            f"{source['url']}{source['remote_path']} at {source['completed_at']}"
        )
    for link in story["envelopes"]:
        print(f"From: {link['envelope']} ({link['step']}, version {link['envelope_version']})")
    if story.get("output_count") is not None:
        print(f"\n{story['status'].lower()} into {story['output_count']} file(s):")
        for output in story.get("outputs", []):
            print(f"  {output}")
    if story["superseded"]:
        print("\nreplaced versions (not counted):")
        print_table(
            [[s[c] for c in _SUPERSEDED_COLUMNS] for s in story["superseded"]],
            [c.upper() for c in _SUPERSEDED_COLUMNS],
        )
    print("\nchunks:")
    print_table(
        [[c["index"], c["state"]] for c in story["chunk_states"]],
        ["CHUNK", "STATE"],
        empty="none (the file was not split into chunks)",
    )
    print("\nrejects:", ", ".join(story["reject_files"]) or "none")
    print_table(
        [[r["line"], r["reason"]] for r in story["first_rejects"]], ["LINE", "REASON"], empty=""
    )
    if story["rejects_truncated"]:
        print(f"(the first 20; ingest rejects {args.key} for all of them)")
    print("\ndead-letter queue:")
    print_table(
        [[d["chunk"], d["receive_count"], d["last_error"]] for d in story["dead_letters"]],
        ["CHUNK", "DELIVERIES", "LAST ERROR"],
        empty="no messages",
    )
    return 0
