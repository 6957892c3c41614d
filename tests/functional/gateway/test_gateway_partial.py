"""Uploads that never finish leave nothing in S3 and end with Transfer's Upload Failed event.

As in AWS, that event is the only record the gateway makes: UploadEventsFunction turns it
into the ledger's PARTIAL (tests/e2e/test_gateway_e2e.py follows it through the whole
stack). The gateway itself leaves the ledger table alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from gateway_kit import (
    AwsWorld,
    GatewayThread,
    PartnerKeys,
    known_hosts_file,
    ledger_items_of,
    log_entries,
    openssh_sftp,
    paramiko_sftp,
    transfer_events,
    wait_for_upload_failed,
)
from support_aws import wait_for


def assert_nothing_landed(world: AwsWorld, key: str) -> None:
    s3 = world.client("s3")
    listed = s3.list_objects_v2(Bucket=world.bucket, Prefix=key).get("Contents", [])
    assert listed == []
    uploads = s3.list_multipart_uploads(Bucket=world.bucket, Prefix=key).get("Uploads", [])
    assert uploads == [], "the multipart upload was aborted"


def assert_partial_sent(
    world: AwsWorld,
    gw: GatewayThread,
    read_events: Callable[[], list[dict[str, Any]]],
    key: str,
) -> dict[str, Any]:
    """The cut-off upload's Upload Failed event and PARTIAL_CLOSE line, and no ledger write;
    returns the log line."""
    detail = wait_for_upload_failed(gw, read_events, world, key)
    assert detail["bytes"] > 0
    assert ledger_items_of(world, key) == [], "the gateway wrote the ledger itself"
    partial = [
        e
        for e in log_entries(world)
        if e["activity-type"] == "PARTIAL_CLOSE" and e["path"] == f"/{world.bucket}/{key}"
    ]
    assert len(partial) == 1
    assert partial[0]["bytes-in"] == detail["bytes"]
    assert partial[0]["message"] == detail["failure-message"]
    return partial[0]


def test_killing_openssh_mid_upload_leaves_no_object(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("acme")
    read_events = transfer_events(world)
    src = tmp_path / "huge.csv"
    with src.open("wb") as fh:
        fh.write(os.urandom(1024 * 1024) * 160)
    batch = tmp_path / "batch"
    batch.write_text(f"put {src} huge.csv\n")
    proc = subprocess.Popen(
        [
            "sftp",
            "-b",
            str(batch),
            "-P",
            str(gw.port),
            "-i",
            str(partner.private_path),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts_file(gw, tmp_path)}",
            "-o",
            "IdentitiesOnly=yes",
            "acme@127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    key = "inbound/acme/huge.csv"
    s3 = world.client("s3")
    try:
        wait_for(  # at least one 8 MiB part is in S3: we are mid-upload
            lambda: s3.list_multipart_uploads(Bucket=world.bucket, Prefix=key).get("Uploads"),
            timeout=30,
            what="the multipart upload to start",
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # sftp and its ssh child, like a crash
        proc.wait(10)

    entry = assert_partial_sent(world, gw, read_events, key)
    assert entry["bytes-in"] < src.stat().st_size
    assert "session ended" in entry["message"]
    assert_nothing_landed(world, key)


def test_disconnect_without_close_is_partial(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld
) -> None:
    partner = make_partner("globex")
    read_events = transfer_events(world)
    client = paramiko_sftp(gw, partner)
    fh = client.open("orders.csv", "wb")
    fh.write(b"order_id,amount\n" + b"1,2\n" * 1000)
    fh.flush()
    client.close()  # ends the session with the file still open
    key = "inbound/globex/orders.csv"
    assert_partial_sent(world, gw, read_events, key)
    assert_nothing_landed(world, key)


def test_s3_failure_is_reported_on_close(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    missing = "gw-no-such-bucket"
    gw = start_gw(bucket=missing)
    partner = make_partner("initech", bucket=missing)
    read_events = transfer_events(world)

    async def upload_with_asyncssh() -> None:
        # paramiko ignores errors on close; asyncssh and OpenSSH report them
        async with (
            asyncssh.connect(
                "127.0.0.1",
                gw.port,
                username=partner.name,
                client_keys=[partner.key],
                known_hosts=asyncssh.import_known_hosts(known_hosts_file(gw, tmp_path).read_text()),
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            fh = await sftp.open("data.csv", "wb")
            await fh.write(b"a,b\n1,2\n")
            with pytest.raises(asyncssh.SFTPFailure, match="NoSuchBucket"):
                await fh.close()

    asyncio.run(upload_with_asyncssh())
    src = tmp_path / "x.csv"
    src.write_text("a,b\n")
    proc = openssh_sftp(gw, partner, f"put {src} x.csv\n", tmp_path, check=False)
    assert proc.returncode != 0
    assert "close remote: Failure" in proc.stderr  # OpenSSH prints the status, not the text
    key = "inbound/initech/data.csv"
    detail = wait_for_upload_failed(gw, read_events, world, key, bucket=missing)
    assert "NoSuchBucket" in detail["failure-message"]
    assert detail["bytes"] == len(b"a,b\n1,2\n")
    assert ledger_items_of(world, key) == []


def test_stopping_the_gateway_aborts_open_uploads(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
) -> None:
    gw = start_gw()
    client = paramiko_sftp(gw, make_partner("hooli"))
    read_events = transfer_events(world)
    fh = client.open("inflight.csv", "wb")
    fh.write(b"a,b\n" * 100_000)
    fh.flush()
    gw.stop()  # like Ctrl-C on `ingest up` while a partner is uploading
    key = "inbound/hooli/inflight.csv"
    # close() returns once the event is shipped: no waiting for it
    detail = wait_for_upload_failed(gw, read_events, world, key, timeout=0)
    assert detail["bytes"] > 0
    assert ledger_items_of(world, key) == []
    assert_nothing_landed(world, key)
    partial = [e for e in log_entries(world) if e["activity-type"] == "PARTIAL_CLOSE"]
    assert [e["path"] for e in partial] == [f"/{world.bucket}/{key}"]
    client.get_channel().get_transport().close()
