"""What the on-call engineer runs, through the real CLI entry point (``ingest.cli.main``)
against a stack on moto found the AWS way (``--stack``: CloudFormation outputs):

* ``ingest status --json`` and the table agree on a stack holding files in every status, and
  ``--partner``, ``--feed``, ``--status`` (repeated) and ``--since`` select the right ones;
* a poison file (its feed does not fit it: every chunk fails) is fixed with ``ingest feeds
  push`` and then redriven (``ingest dlq redrive --file KEY``), or reprocessed (``ingest
  reprocess KEY``), and ends PROCESSED with exact counts and no duplicate records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pysequoia
import pytest

from ingest.adapters.dynamo import attr
from ingest.adapters.ledger_expected import ExpectedItems
from ingest.adapters.ledger_items import FILE_SK, file_pk
from ingest.cli import main
from ingest.domain.expected import expected_key
from ingest.domain.files import FileEntry, FileStatus
from ingest_local.lambda_service import LambdaContext

STACK = "ops-cli-test"
#: the ``pipeline`` fixture of tests/functional/core/conftest.py, its bucket and region
Pipeline = Any
BUCKET = "test-landing-123456789012"
REGION = "us-east-1"
ROLE_ID = "AROAEXAMPLETRANSFER1"
HOURS_AGO = 3


@dataclass
class Run:
    code: int
    out: str
    err: str


Ingest = Callable[..., Run]


@pytest.fixture
def ingest(pipeline: Pipeline) -> Ingest:
    """``ingest ARGS… --stack STACK`` in this process; the stack's outputs name the pipeline's
    resources, as `sam deploy` leaves them."""
    assert pipeline.bucket == BUCKET
    outputs = {
        "LandingBucketName": BUCKET,
        "IngestQueueUrl": pipeline.queue_url,
        "IngestDLQUrl": pipeline.dlq_url,
        "RecordsTableName": pipeline.records_table,
        "LedgerTableName": pipeline.ledger_table,
    }
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": STACK}}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=STACK, TemplateBody=json.dumps(template)
    )

    def run(*args: str) -> Run:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*args, "--stack", STACK, "--region", REGION])
            except SystemExit as exc:  # argparse refusing the arguments
                code = int(exc.code or 0)
        return Run(code, out.getvalue(), err.getvalue())

    return run


def _json(ingest: Ingest, *args: str) -> Any:
    run = ingest(*args)
    assert run.code == 0, run.err
    return json.loads(run.out)


# --- status: every status, the table and --json, the filters ----------------------------------

GOOD = b"order_id,amount\n" + b"".join(b"g%d,%d.5\n" % (i, i) for i in range(12))
MIXED = b"order_id,amount\n1,1.5\n2,oops\n3,3.5\n"
EVENTS = b'{"event_id": "e1", "kind": "click"}\n{"event_id": "e2", "kind": "view"}\n'


def _transfer_failed(key: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "0",
        "detail-type": "SFTP Server File Upload Failed",
        "source": "aws.transfer",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "status-code": "FAILED",
            "file-path": f"/{BUCKET}/{key}",
            "bytes": 10,
            "failure-code": "PARTIAL_UPLOAD",
            "failure-message": "connection reset by peer",
        },
    }


def _stack_in_every_status(p: Pipeline) -> dict[str, str]:
    """One file (at least) in each FileStatus, through the handlers where the pipeline makes
    that status; the key of each status."""
    from lambdas import upload_events

    p.setenv("TRANSFER_ROLE_ID", ROLE_ID)
    held_by = f"AWS:{ROLE_ID}:session"
    keys = {
        FileStatus.PROCESSED: "inbound/acme/orders/good.csv",
        FileStatus.PROCESSED_WITH_REJECTS: "inbound/globex/orders/mixed.csv",
        FileStatus.FAILED: "inbound/globex/orders/broken.csv.gz",
        FileStatus.UNMATCHED: "inbound/acme/invoices/inv.pdf",
        FileStatus.RECEIVED: "inbound/acme/orders/held.csv",
        FileStatus.PARTIAL: "inbound/globex/orders/cut.csv",
        FileStatus.QUEUED: "inbound/acme/events/queued.jsonl",
        FileStatus.PROCESSING: "inbound/globex/events/busy.jsonl",
        FileStatus.IGNORED: "inbound/acme/orders/notes.txt",
        FileStatus.EXPANDED: "inbound/acme/orders/batch.zip",
        FileStatus.DECRYPTED: "inbound/acme/orders/day.csv.pgp",
        FileStatus.DUPLICATE: "inbound/acme/deduped/copy.csv",
    }
    p.land(keys[FileStatus.PROCESSED], b"order_id,amount\ng0,0.5\n")
    p.drain(timeout=60)
    p.land(keys[FileStatus.PROCESSED], GOOD)  # a newer version: the first is superseded
    p.land(keys[FileStatus.PROCESSED_WITH_REJECTS], MIXED)
    p.land(keys[FileStatus.FAILED], b"\x1f\x8b\x08\x00not gzip at all")
    p.land(keys[FileStatus.UNMATCHED], b"%PDF-1.4")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as members:
        members.writestr("from-batch.csv", GOOD)  # written next to it (no event on moto)
    p.land(keys[FileStatus.EXPANDED], archive.getvalue())
    p.setenv("TRANSFER_SERVER_ID", "s-0123456789abcdef0")
    pgp_key = pysequoia.Tsk.generate("acme")  # made here, never committed
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="aws/transfer/s-0123456789abcdef0/acme",
        SecretString=json.dumps({"PGPPrivateKey": str(pgp_key), "PGPPassphrase": ""}),
    )
    encrypted = pysequoia.encrypt(GOOD, [pgp_key.extract_certificate()])
    p.land(keys[FileStatus.DECRYPTED], encrypted)  # its plaintext written next to it
    p.land("inbound/acme/deduped/first.csv", GOOD)
    p.land(keys[FileStatus.DUPLICATE], GOOD)  # the same bytes again (duplicates: skip)
    p.drain(timeout=60)  # the broken file: FAILED at once, its message to the DLQ
    p.land(keys[FileStatus.RECEIVED], GOOD, principal_id=held_by)
    p.land(keys[FileStatus.PARTIAL], GOOD[:10], principal_id=held_by)
    upload_events.handler(
        _transfer_failed(keys[FileStatus.PARTIAL]),
        LambdaContext(function_name="UploadEventsFunction"),
    )
    p.land(keys[FileStatus.QUEUED], EVENTS)
    busy = p.land(keys[FileStatus.PROCESSING], EVENTS)
    # PROCESSING is what a chunk's start writes (the processor's own ledger call); IGNORED is
    # a status no handler writes today (fanout logs temporary names and moves on): both are
    # written through the ledger here, so that the CLI is held to every status there is.
    entry = p.file(keys[FileStatus.PROCESSING])
    assert entry.version is not None
    p.ledger.mark_processing(entry.key, entry.version, entry.ingestion)
    p.ledger.record_terminal(
        keys[FileStatus.IGNORED], FileStatus.IGNORED, reason="set aside by hand", size=1
    )
    # MISSING and LATE are the expected-files check's entries, written as it writes them
    expected = ExpectedItems(p.ddb, p.ledger.table)
    # a deadline 40 minutes ago: its window (30 minutes' grace) ended 10 minutes ago
    deadline = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=40)).replace(microsecond=0)
    for status, partner in ((FileStatus.MISSING, "acme"), (FileStatus.LATE, "globex")):
        keys[status] = expected_key("orders", partner, deadline)
        at = (deadline + dt.timedelta(minutes=30)).timestamp()  # the deadline's window end
        entry = FileEntry(
            key=keys[status],
            status=FileStatus.MISSING,
            feed="orders",
            received_at=at,
            updated_at=at,
            reason=f"0 of 1 expected file(s) by {deadline:%Y-%m-%dT%H:%M:%SZ} (+1800s grace)",
        )
        assert expected.record_missing(entry)
    assert expected.mark_late(keys[FileStatus.LATE], {"late_files": [keys[FileStatus.PROCESSED]]})
    assert busy["files"][0]["outcome"] == "QUEUED"
    return {str(status): key for status, key in keys.items()}


def _table(ingest: Ingest, *args: str) -> list[list[str]]:
    run = ingest("status", *args)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split() == [
        "PARTNER",
        "FEED",
        "KEY",
        "STATUS",
        "ROWS",
        "OK",
        "REJECTED",
        "CHUNKS",
        "AGE",
        "REASON",
    ]
    rows = []
    for line in lines[1:]:
        if not line.strip():
            break  # the table of replaced versions follows
        rows.append(line.split())
    return rows


def _expected_row(f: dict[str, Any]) -> list[str]:
    """A file's --json entry as its table row shows it (blank cells are no word)."""
    cells = [f["partner"], f["feed"], f["key"], f["status"], f["rows_ok"], f["rows_rejected"]]
    return [str(c) for c in cells if c is not None] + [f"{f['chunks_done']}/{f['chunks']}"]


def test_status_json_and_table_agree_on_every_status_and_the_filters_select(
    pipeline: Pipeline, ingest: Ingest
) -> None:
    keys = _stack_in_every_status(pipeline)
    old = keys[FileStatus.PROCESSED_WITH_REJECTS]
    pipeline.ddb.update_item(  # received hours ago: what --since is for
        TableName=pipeline.ledger_table,
        Key={"pk": attr(file_pk(old)), "sk": attr(FILE_SK)},
        UpdateExpression="SET received_at = :t",
        ExpressionAttributeValues={":t": attr(time.time() - HOURS_AGO * 3600)},
    )

    every = _json(ingest, "status", "--json")
    by_key = {f["key"]: f for f in every}
    assert {f["status"] for f in every} == set(FileStatus)  # every status there is
    for status, key in keys.items():
        assert by_key[key]["status"] == status
    # today's fields, and partner, received_at, updated_at
    for f in every:
        assert {"key", "feed", "status", "rows_ok", "rows_rejected", "chunks", "chunks_done"} | {
            "size",
            "etag",
            "partner",
            "received_at",
            "updated_at",
        } <= set(f)
        # inbound/<partner>/…, or an expected-files entry's expected/<feed>/<partner>/<deadline>
        parts = f["key"].split("/")
        assert f["partner"] == (parts[2] if parts[0] == "expected" else parts[1])
    good = by_key[keys[FileStatus.PROCESSED]]
    assert (good["rows_ok"], good["rows_rejected"], good["chunks_done"]) == (12, 0, 1)
    assert [s["status"] for s in good["superseded"]] == ["PROCESSED"]
    mixed = by_key[old]
    assert (mixed["rows_ok"], mixed["rows_rejected"]) == (2, 1)
    failed = by_key[keys[FileStatus.FAILED]]
    assert "CorruptInputError" in failed["reason"]
    received = [f["received_at"] or f["updated_at"] for f in every]
    assert received == sorted(received, reverse=True)  # newest first
    assert every[-1]["key"] == old

    # the table: the same files in the same order, each row its JSON entry
    rows = _table(ingest)
    keyed = ("inbound/", "expected/")
    assert [next(c for c in row if "/" in c and c.startswith(keyed)) for row in rows] == [
        f["key"] for f in every
    ]
    for f, row in zip(every, rows, strict=True):
        expected = _expected_row(f)
        assert row[: len(expected)] == expected, (f, row)
        age = row[len(expected)]
        assert age[:-1].isdigit() and age[-1] in "smhd", row
        if f["key"] == old:
            assert age == f"{HOURS_AGO}h", row
        reason = " ".join(row[len(expected) + 1 :])
        assert reason == " ".join((f["reason"] or "").split()), (f, row)
    replaced = ingest("status").out.split("replaced by a newer version", 1)[1]
    assert good["superseded"][0]["version"] in replaced and good["key"] in replaced

    def selected(*args: str) -> list[str]:
        chosen = _json(ingest, "status", "--json", *args)
        if not chosen:
            assert ingest("status", *args).out.strip() == "no files match"
            return []
        table = [_expected_row(f)[:4] for f in chosen]
        assert [row[:4] for row in _table(ingest, *args)] == table  # the table agrees again
        return [f["key"] for f in chosen]

    keys_of = [f["key"] for f in every]
    assert selected("--partner", "acme") == [k for k in keys_of if "/acme/" in k]
    assert selected("--partner", "globex", "--feed", "orders") == [
        keys[FileStatus.PARTIAL],
        keys[FileStatus.FAILED],
        keys[FileStatus.LATE],
        old,
    ]
    assert selected("--status", "FAILED", "--status", "PARTIAL") == [
        k for k in keys_of if k in (keys[FileStatus.FAILED], keys[FileStatus.PARTIAL])
    ]
    assert selected("--feed", "events", "--status", "QUEUED") == [keys[FileStatus.QUEUED]]
    assert selected("--since", "1h") == [k for k in keys_of if k != old]
    assert selected("--since", f"{HOURS_AGO + 1}h") == keys_of
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert selected("--since", an_hour_ago) == [k for k in keys_of if k != old]
    assert selected("--partner", "nobody") == []
    refused = ingest("status", "--since", "yesterday")
    assert refused.code == 2 and "not a duration" in refused.err


# --- a poison file: fixed by a feed push, then redriven or reprocessed -------------------------

#: the partner's orders carry ``id``; the feed as first published wants ``order_id``
POISON_ROWS = 300
POISON = b"id,amount\n" + b"".join(b"p%d,%d.25\n" % (i, i) for i in range(POISON_ROWS))


@pytest.fixture
def feeds_yaml(feeds_yaml: str) -> str:
    """The default feeds, orders files in 1 KiB chunks (the poison file is several), and a
    feed that skips content duplicates."""
    return (
        feeds_yaml.replace(
            'match: "inbound/{partner}/orders/*.csv"',
            'match: "inbound/{partner}/orders/*.csv"\n    chunk_size: 1KiB',
        )
        + DEDUPED_FEED
    )


DEDUPED_FEED = """
  - name: deduped
    match: "inbound/{partner}/deduped/*.csv"
    format: csv
    duplicates: skip
    key: {pk: "DEDUP#{order_id}", sk: "PARTNER#{partner}"}
    fields:
      order_id: {type: string, required: true}
      amount: {type: decimal, required: true}
"""


def _poisoned(pipeline: Pipeline, key: str) -> int:
    """Land the poison file and let every delivery of its chunks fail; its chunk count."""
    pipeline.land(key, POISON)
    pipeline.drain(timeout=120)
    entry = pipeline.file(key)
    assert entry.status == FileStatus.FAILED, entry
    assert "HeaderError" in (entry.reason or "") and "order_id" in (entry.reason or "")
    assert (entry.rows_ok, entry.chunks_done) == (0, 0)
    assert entry.chunks > 1
    assert pipeline.queue_depth(pipeline.dlq_url) == entry.chunks  # every chunk is poison
    assert pipeline.count_items() == 0
    return entry.chunks


def _push_fixed_feeds(ingest: Ingest, feeds_yaml: str, tmp_path: Path) -> None:
    fixed = tmp_path / "feeds.yaml"
    fixed.write_text(
        feeds_yaml.replace(
            "      order_id: {type: string, required: true}",
            "      order_id: {type: string, required: true, column: id}",
            1,
        )
    )
    assert fixed.read_text() != feeds_yaml
    run = ingest("feeds", "push", str(fixed))
    assert run.code == 0, run.err
    assert f"s3://{BUCKET}/config/feeds.yaml" in run.out


def _processed_exactly(pipeline: Pipeline, key: str, chunks: int) -> None:
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == (
        FileStatus.PROCESSED,
        POISON_ROWS,
        0,
    )
    assert (entry.chunks_done, entry.chunks) == (chunks, chunks)
    items = [i for i in pipeline.items() if i["_source"].endswith(key)]
    assert len(items) == POISON_ROWS  # no duplicates: one item per row
    assert len({(i["pk"], i["sk"]) for i in items}) == POISON_ROWS
    assert sorted(int(i["_line"]) for i in items) == list(range(2, POISON_ROWS + 2))
    assert pipeline.count_items() == POISON_ROWS


def _cold_start_processor() -> None:
    """The processor reads the feeds file through a cache that looks again after its TTL or at
    a cold start: the next invocation is a cold start (rather than waiting out the TTL)."""
    from lambdas import processor

    processor.wiring.reset()


def test_a_poison_file_is_fixed_by_a_feed_push_then_redriven(
    pipeline: Pipeline, ingest: Ingest, feeds_yaml: str, tmp_path: Path
) -> None:
    key = "inbound/acme/orders/poison.csv"
    chunks = _poisoned(pipeline, key)
    listed = _json(ingest, "dlq", "list", "--json")
    assert sorted(m["chunk"] for m in listed if m["key"] == key) == list(range(chunks))

    _push_fixed_feeds(ingest, feeds_yaml, tmp_path)
    _cold_start_processor()
    run = ingest("dlq", "redrive", "--file", key)
    assert run.code == 0, run.err
    assert f"moved {chunks} message(s) of {key}" in run.out
    assert pipeline.queue_depth(pipeline.dlq_url) == 0
    pipeline.drain(timeout=120)
    _processed_exactly(pipeline, key, chunks)
    shown = _json(ingest, "status", "--json", "--status", "PROCESSED")
    assert [(f["key"], f["rows_ok"], f["chunks_done"]) for f in shown] == [
        (key, POISON_ROWS, chunks)
    ]


def test_a_poison_file_is_fixed_by_a_feed_push_then_reprocessed(
    pipeline: Pipeline, ingest: Ingest, feeds_yaml: str, tmp_path: Path
) -> None:
    key = "inbound/acme/orders/poison.csv"
    chunks = _poisoned(pipeline, key)

    _push_fixed_feeds(ingest, feeds_yaml, tmp_path)
    _cold_start_processor()
    run = ingest("reprocess", key)
    assert run.code == 0, run.err
    assert f"{key}: re-queued {chunks} of {chunks} chunks" in run.out
    pipeline.drain(timeout=120)
    _processed_exactly(pipeline, key, chunks)

    # the old messages still in the DLQ, redriven too, count nothing twice
    assert pipeline.queue_depth(pipeline.dlq_url) == chunks
    run = ingest("dlq", "redrive", "--all")
    assert run.code == 0, run.err
    pipeline.drain(timeout=120)
    _processed_exactly(pipeline, key, chunks)
    again = ingest("reprocess", key)  # nothing left to re-queue, and it says so
    assert again.code != 0 and "cannot be re-queued" in again.err
