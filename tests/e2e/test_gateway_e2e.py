"""Partners' real SFTP clients against the whole local stack: records land with exact counts,
and a client killed mid-upload leaves no object, no records and a PARTIAL ledger entry."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
from pathlib import Path

import asyncssh
import pytest
from stack_kit import RunningStack
from support_aws import wait_for

from ingest.adapters.ledger import Ledger


def partner(stack: RunningStack, name: str, tmp_path: Path) -> Path:
    """Register ``name`` through the CLI with a key generated for this test."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    private = tmp_path / f"{name}_ed25519"
    private.write_bytes(key.export_private_key())
    private.chmod(0o600)
    public = tmp_path / f"{name}_ed25519.pub"
    public.write_bytes(key.export_public_key())
    stack.ingest("partners", "add", name, "--ssh-key", str(public))
    return private


def sample_files(tmp_path: Path, tag: str) -> dict[str, tuple[bytes, int]]:
    """feed path → (bytes, rows): a CSV, a gzipped CSV and a JSONL file."""

    def csv(rows: int, prefix: str) -> bytes:
        lines = ["order_id,amount,quantity,placed_at,gift"]
        lines += [f"{prefix}-{i},{i}.10,{i % 5},2026-11-01T08:00:00Z,true" for i in range(rows)]
        return ("\n".join(lines) + "\n").encode()

    jsonl = "".join(
        json.dumps({"event_id": f"{tag}-ev-{i}", "kind": "click", "value": i, "day": "2026-11-01"})
        + "\n"
        for i in range(60)
    ).encode()
    return {
        f"orders/{tag}-plain.csv": (csv(120, f"{tag}-p"), 120),
        f"orders/{tag}-zipped.csv.gz": (gzip.compress(csv(80, f"{tag}-z")), 80),
        f"events/{tag}-events.jsonl": (jsonl, 60),
    }


def count_records(stack: RunningStack, key: str) -> int:
    source = f"s3://{stack.resources['bucket']}/{key}"
    total = 0
    for page in (
        stack.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=stack.resources["table"],
            FilterExpression="#s = :s",
            ExpressionAttributeNames={"#s": "_source"},
            ExpressionAttributeValues={":s": {"S": source}},
            Select="COUNT",
        )
    ):
        total += page["Count"]
    return total


def assert_processed_exactly(
    stack: RunningStack, name: str, files: dict[str, tuple[bytes, int]]
) -> None:
    for path, (data, rows) in files.items():
        key = f"inbound/{name}/{path}"
        status = stack.wait_for_file(key)
        assert status["status"] == "PROCESSED", status
        assert (status["rows_ok"], status["rows_rejected"]) == (rows, 0)
        assert status["size"] == len(data)
        assert count_records(stack, key) == rows


def test_openssh_sftp_uploads_become_exact_records(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    key = partner(local_stack, "gw-openssh", tmp_path)
    files = sample_files(tmp_path, "ossh")
    commands = ["-mkdir orders", "-mkdir events"]
    for path, (data, _) in files.items():
        local = tmp_path / path.replace("/", "_")
        local.write_bytes(data)
        commands.append(f"put {local} {path}")
    local_stack.sftp_batch(commands, user="gw-openssh", key=key)
    assert_processed_exactly(local_stack, "gw-openssh", files)


def test_paramiko_uploads_become_exact_records(local_stack: RunningStack, tmp_path: Path) -> None:
    key = partner(local_stack, "gw-paramiko", tmp_path)
    files = sample_files(tmp_path, "pmk")
    with local_stack.paramiko_sftp("gw-paramiko", key) as sftp:
        sftp.mkdir("orders")
        sftp.mkdir("events")
        for path, (data, _) in files.items():
            with sftp.open(path, "wb") as fh:
                fh.write(data)
    assert_processed_exactly(local_stack, "gw-paramiko", files)


@pytest.mark.slow
def test_client_killed_mid_upload_leaves_nothing_but_partial(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    key = partner(local_stack, "gw-killed", tmp_path)
    big = tmp_path / "big.csv"
    with big.open("w") as fh:
        fh.write("order_id,amount,quantity,placed_at,gift\n")
        row = "K-{},1.00,1,2026-11-01T08:00:00Z,false\n"
        for i in range(2_500_000):  # ~100 MB: long enough to kill the client half way
            fh.write(row.format(i))
    batch = tmp_path / "batch"
    batch.write_text(f"-mkdir orders\nput {big} orders/big.csv\n")
    proc = subprocess.Popen(
        ["sftp", "-b", str(batch), "-P", str(local_stack.sftp_port), "-i", str(key),
         "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={local_stack.known_hosts}",
         "gw-killed@127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    s3 = local_stack.client("s3")
    bucket = local_stack.resources["bucket"]
    object_key = "inbound/gw-killed/orders/big.csv"
    try:
        wait_for(
            lambda: s3.list_multipart_uploads(Bucket=bucket, Prefix=object_key).get("Uploads"),
            timeout=60,
            what="the upload to start",
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    # the gateway's Upload Failed event, through the stack's EventBridge rule and
    # UploadEventsFunction, is what records the PARTIAL (the gateway writes no ledger)
    status = local_stack.wait_for_file(object_key)
    assert status["status"] == "PARTIAL"
    assert (status["rows_ok"], status["chunks"]) == (0, 0)  # never planned, nothing queued
    ledger = Ledger(local_stack.client("dynamodb"), local_stack.resources["ledger_table"])
    entry = ledger.get_file(object_key)
    assert entry is not None
    assert "session ended" in (entry.reason or "")
    assert s3.list_objects_v2(Bucket=bucket, Prefix=object_key).get("KeyCount", 0) == 0
    assert s3.list_multipart_uploads(Bucket=bucket, Prefix=object_key).get("Uploads", []) == []
    # Nothing may arrive later either: no chunk of it was planned, and once the ingest queue
    # is drained no message of any file is left that could still write records.
    wait_for(lambda: queue_drained(local_stack), timeout=120, what="the ingest queue to drain")
    assert count_records(local_stack, object_key) == 0


def queue_drained(stack: RunningStack) -> bool:
    """Whether the ingest queue holds no message, visible or being processed."""
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resources["queue_url"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(value == "0" for value in attrs.values())
