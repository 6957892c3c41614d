"""Adversarial partners against the whole local stack (``ingest up``, real SFTP clients):
a cut-off re-upload never wipes a file, a version sent again is ingested afresh, and rows
DynamoDB would refuse are rejects while other partners' files go on."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from stack_kit import RunningStack
from support_aws import wait_for
from test_gateway_e2e import count_records, partner

from ingest.adapters.ledger import Ledger

HEADER = "order_id,amount,quantity,placed_at,gift\n"


def orders(prefix: str, rows: int) -> bytes:
    body = "".join(f"{prefix}-{i},{i}.25,1,2026-11-01T08:00:00Z,false\n" for i in range(rows))
    return (HEADER + body).encode()


def test_a_cut_off_reupload_leaves_the_processed_file_as_it_was(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    name = "hard-victim"
    key_file = partner(local_stack, name, tmp_path)
    key = f"inbound/{name}/orders/victim.csv"
    data = orders("victim", 3)
    with local_stack.paramiko_sftp(name, key_file) as sftp:
        sftp.mkdir("orders")
        with sftp.open("orders/victim.csv", "wb") as fh:
            fh.write(data)
    done = local_stack.wait_for_file(key)
    assert (done["status"], done["rows_ok"]) == ("PROCESSED", 3)

    # the same name opened for writing, 20 bytes sent, then the connection dropped
    with local_stack.paramiko_sftp(name, key_file) as sftp:
        handle = sftp.open("orders/victim.csv", "wb")
        handle.write(b"x" * 20)
        handle.flush()
    ledger = Ledger(local_stack.client("dynamodb"), local_stack.resources["ledger_table"])
    entry = wait_for(
        lambda: (e := ledger.get_file(key)) is not None and e.failed_upload and e,
        timeout=60,
        what="the failed upload to be noted",
    )
    assert (entry.status, entry.rows_ok, entry.version) == ("PROCESSED", 3, done["etag"])
    assert entry.failed_upload["bytes"] == 20
    s3 = local_stack.client("s3")
    body = s3.get_object(Bucket=local_stack.resources["bucket"], Key=key)["Body"].read()
    assert body == data
    assert count_records(local_stack, key) == 3
    status = next(f for f in local_stack.status() if f["key"] == key)
    assert (status["status"], status["rows_ok"]) == ("PROCESSED", 3)

    # the same file sent again after the cut-off: a duplicate of what is there, never stuck
    with (
        local_stack.paramiko_sftp(name, key_file) as sftp,
        sftp.open("orders/victim.csv", "wb") as fh,
    ):
        fh.write(data)
    again = local_stack.wait_for_file(key)
    assert (again["status"], again["rows_ok"], again["etag"]) == ("PROCESSED", 3, done["etag"])
    assert count_records(local_stack, key) == 3


def processed_anew(ledger: Ledger, key: str, previous: str | None) -> Any:
    """The entry once an ingestion other than ``previous`` is PROCESSED, else None."""
    entry = ledger.get_file(key)
    if entry is not None and entry.ingestion != previous and entry.status == "PROCESSED":
        return entry
    return None


def test_a_version_sent_again_is_processed_again(local_stack: RunningStack, tmp_path: Path) -> None:
    name = "hard-resend"
    key_file = partner(local_stack, name, tmp_path)
    key = f"inbound/{name}/orders/daily.csv"
    ledger = Ledger(local_stack.client("dynamodb"), local_stack.resources["ledger_table"])
    versions = [orders("a", 4), orders("b", 7), orders("a", 4)]
    local_stack.sftp_batch(["-mkdir orders"], user=name, key=key_file)
    previous = None
    for n, body in enumerate(versions):
        local = tmp_path / f"daily-{n}.csv"
        local.write_bytes(body)
        local_stack.sftp_batch([f"put {local} orders/daily.csv"], user=name, key=key_file)
        entry = wait_for(
            functools.partial(processed_anew, ledger, key, previous),
            timeout=60,
            what=f"version {n} to be processed",
        )
        previous = entry.ingestion
    assert (entry.rows_ok, entry.chunks_done, entry.chunks) == (4, 1, 1)


def test_hostile_rows_are_rejects_and_other_partners_files_land(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    hostile = "hard-hostile"
    friendly = "hard-friendly"
    hostile_key = partner(local_stack, hostile, tmp_path)
    friendly_key = partner(local_stack, friendly, tmp_path)
    bad = (
        HEADER + "ok-1,1.00,1,2026-11-01T08:00:00Z,false\n"
        f"{'k' * 3000},2.00,1,2026-11-01T08:00:00Z,false\n"
        "zero-1,0E-1000,1,2026-11-01T08:00:00Z,false\n"
        "zero-2,0E+500,1,2026-11-01T08:00:00Z,false\n"
    ).encode()
    (tmp_path / "bad.csv").write_bytes(bad)
    (tmp_path / "good.csv").write_bytes(orders("friendly", 50))
    local_stack.sftp_batch(
        ["-mkdir orders", f"put {tmp_path / 'bad.csv'} orders/bad.csv"],
        user=hostile,
        key=hostile_key,
    )
    local_stack.sftp_batch(
        ["-mkdir orders", f"put {tmp_path / 'good.csv'} orders/good.csv"],
        user=friendly,
        key=friendly_key,
    )
    bad_status = local_stack.wait_for_file(f"inbound/{hostile}/orders/bad.csv", timeout=90)
    assert (bad_status["status"], bad_status["rows_ok"], bad_status["rows_rejected"]) == (
        "PROCESSED_WITH_REJECTS",
        3,
        1,
    )
    good_status = local_stack.wait_for_file(f"inbound/{friendly}/orders/good.csv", timeout=90)
    assert (good_status["status"], good_status["rows_ok"]) == ("PROCESSED", 50)


def test_the_queue_visibility_is_derived_from_the_processor_timeout(
    local_stack: RunningStack,
) -> None:
    """The deployed queue's visibility is 6 x ProcessorTimeoutSeconds (900 s by default), from
    the template's mapping, as CloudFormation resolves it."""
    attrs = local_stack.client("sqs").get_queue_attributes(
        QueueUrl=local_stack.resources["queue_url"], AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    assert attrs["VisibilityTimeout"] == "5400"
