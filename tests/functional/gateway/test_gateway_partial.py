"""Uploads that never finish leave nothing in S3 and end as PARTIAL in the ledger."""

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
    log_entries,
    openssh_sftp,
    paramiko_sftp,
)
from support_aws import wait_for

from ingest.adapters.ledger import Ledger
from ingest.domain.files import FileStatus


def assert_nothing_landed(world: AwsWorld, key: str) -> None:
    s3 = world.client("s3")
    listed = s3.list_objects_v2(Bucket=world.bucket, Prefix=key).get("Contents", [])
    assert listed == []
    uploads = s3.list_multipart_uploads(Bucket=world.bucket, Prefix=key).get("Uploads", [])
    assert uploads == [], "the multipart upload was aborted"


def assert_partial_recorded(world: AwsWorld, gw: GatewayThread, key: str) -> dict[str, Any]:
    ledger = Ledger(world.client("dynamodb"), world.ledger_table)
    entry = wait_for(lambda: ledger.get_file(key), timeout=30, what="the ledger entry")
    assert entry.status == FileStatus.PARTIAL
    assert entry.reason
    assert entry.rows_ok == 0
    gw.flush()
    partial = [
        e
        for e in log_entries(world)
        if e["activity-type"] == "PARTIAL_CLOSE" and e["path"] == f"/{world.bucket}/{key}"
    ]
    assert len(partial) == 1
    assert partial[0]["bytes-in"] > 0
    return partial[0]


def test_killing_openssh_mid_upload_leaves_no_object(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("acme")
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

    entry = assert_partial_recorded(world, gw, key)
    assert entry["bytes-in"] < src.stat().st_size
    assert_nothing_landed(world, key)


def test_disconnect_without_close_is_partial(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld
) -> None:
    partner = make_partner("globex")
    client = paramiko_sftp(gw, partner)
    fh = client.open("orders.csv", "wb")
    fh.write(b"order_id,amount\n" + b"1,2\n" * 1000)
    fh.flush()
    client.close()  # ends the session with the file still open
    key = "inbound/globex/orders.csv"
    assert_partial_recorded(world, gw, key)
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
    ledger = Ledger(world.client("dynamodb"), world.ledger_table)
    entry = ledger.get_file("inbound/initech/data.csv")
    assert entry is not None
    assert entry.status == FileStatus.PARTIAL
    assert "NoSuchBucket" in (entry.reason or "")


def test_stopping_the_gateway_aborts_open_uploads(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
) -> None:
    gw = start_gw()
    client = paramiko_sftp(gw, make_partner("hooli"))
    fh = client.open("inflight.csv", "wb")
    fh.write(b"a,b\n" * 100_000)
    fh.flush()
    gw.stop()  # like Ctrl-C on `ingest up` while a partner is uploading
    key = "inbound/hooli/inflight.csv"
    entry = Ledger(world.client("dynamodb"), world.ledger_table).get_file(key)
    assert entry is not None
    assert entry.status == FileStatus.PARTIAL
    assert_nothing_landed(world, key)
    partial = [e for e in log_entries(world) if e["activity-type"] == "PARTIAL_CLOSE"]
    assert [e["path"] for e in partial] == [f"/{world.bucket}/{key}"]
    client.get_channel().get_transport().close()
