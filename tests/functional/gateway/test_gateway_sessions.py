"""Live sessions end when their partner is removed, when idle, and when the client is gone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncssh
import paramiko
import pytest
from gateway_kit import (
    AwsWorld,
    GatewayThread,
    PartnerKeys,
    asyncssh_connect,
    known_hosts_file,
    log_entries,
    paramiko_sftp,
    transfer_events,
    wait_for_upload_failed,
)
from support_aws import wait_for

from ingest.adapters.partners import remove_partner
from ingest_local.gateway import Limits


def is_ended(client: paramiko.SFTPClient) -> bool:
    transport = client.get_channel().get_transport()
    return not transport.is_active()


def messages(world: AwsWorld, gw: GatewayThread, kind: str) -> list[str]:
    gw.flush()
    return [str(e.get("message")) for e in log_entries(world) if e["activity-type"] == kind]


OPERATIONS: dict[str, Callable[[paramiko.SFTPClient], object]] = {
    "upload": lambda c: c.open("new.csv", "wb"),
    "list": lambda c: c.listdir("/"),
    "delete": lambda c: c.remove("keep.csv"),
    "stat": lambda c: c.stat("keep.csv"),
    "rename": lambda c: c.rename("keep.csv", "moved.csv"),
    "mkdir": lambda c: c.mkdir("dir"),
}


@pytest.mark.parametrize("operation", ["upload", "list", "delete"])
def test_a_removed_partner_is_refused_at_its_next_operation(
    gw: GatewayThread,
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
    operation: str,
) -> None:
    acme = make_partner("acme")
    s3 = world.client("s3")
    s3.put_object(Bucket=world.bucket, Key="inbound/acme/keep.csv", Body=b"id\n1\n")
    first, second = paramiko_sftp(gw, acme), paramiko_sftp(gw, acme)
    try:
        assert first.listdir("/") == ["receipts", "keep.csv"]
        remove_partner(
            world.client("transfer"), world.server_id, "acme", state_dir=tmp_path / "state"
        )
        with pytest.raises(PermissionError, match="access revoked: the user no longer exists"):
            OPERATIONS[operation](first)
        # removal ends the partner's sessions: this one, and the other one too
        wait_for(
            lambda: is_ended(first) and is_ended(second), what="the sessions to end", timeout=30
        )
        wait_for(
            lambda: gw.gateway.services.sessions.active("acme") == 0, what="the slots", timeout=30
        )
    finally:
        first.close()
        second.close()
    listed = s3.list_objects_v2(Bucket=world.bucket, Prefix="inbound/acme/").get("Contents", [])
    assert [o["Key"] for o in listed] == ["inbound/acme/keep.csv"]
    revoked = [m for m in messages(world, gw, "ERROR") if m.startswith("access revoked")]
    assert len(revoked) == 2  # one per session ended


@pytest.mark.parametrize("operation", ["stat", "rename", "mkdir"])
def test_a_partner_whose_login_key_was_removed_is_refused(
    gw: GatewayThread,
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    operation: str,
) -> None:
    acme = make_partner("acme")
    world.client("s3").put_object(Bucket=world.bucket, Key="inbound/acme/keep.csv", Body=b"x")
    client = paramiko_sftp(gw, acme)
    transfer = world.client("transfer")
    try:
        client.stat("keep.csv")
        key_id = transfer.describe_user(ServerId=world.server_id, UserName="acme")["User"][
            "SshPublicKeys"
        ][0]["SshPublicKeyId"]
        transfer.delete_ssh_public_key(
            ServerId=world.server_id, UserName="acme", SshPublicKeyId=key_id
        )
        with pytest.raises(PermissionError, match="the key this session logged in with"):
            OPERATIONS[operation](client)
        wait_for(lambda: is_ended(client), what="the session to end", timeout=30)
    finally:
        client.close()


def test_an_upload_open_when_the_partner_is_removed_does_not_land(
    gw: GatewayThread,
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    acme = make_partner("acme")
    read_events = transfer_events(world)

    async def upload() -> str:
        async with asyncssh_connect(gw, acme, tmp_path) as conn, conn.start_sftp_client() as sftp:
            fh = await sftp.open("late.csv", "wb")
            await fh.write(b"id\n1\n")
            remove_partner(
                world.client("transfer"), world.server_id, "acme", state_dir=tmp_path / "state"
            )
            with pytest.raises(asyncssh.SFTPPermissionDenied) as refused:
                await fh.close()
            return str(refused.value)

    assert asyncio.run(upload()) == "access revoked: the user no longer exists"
    listed = world.client("s3").list_objects_v2(Bucket=world.bucket, Prefix="inbound/acme/")
    assert listed.get("Contents", []) == []
    detail = wait_for_upload_failed(gw, read_events, world, "inbound/acme/late.csv")
    assert detail["failure-message"] == "access revoked: the user no longer exists"
    assert detail["bytes"] == len(b"id\n1\n")


def test_an_idle_session_is_closed_and_frees_its_slot(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
) -> None:
    gw = start_gw(Limits(idle_timeout=1, max_sessions_per_user=1))
    acme = make_partner("acme")
    idle = paramiko_sftp(gw, acme)
    try:
        assert idle.listdir("/") == ["receipts"]
        wait_for(lambda: is_ended(idle), what="the idle session to be closed", timeout=30)
    finally:
        idle.close()
    wait_for(lambda: gw.gateway.services.sessions.active("acme") == 0, what="the slot", timeout=30)
    again = paramiko_sftp(gw, acme)  # the only slot is free again
    try:
        assert again.listdir("/") == ["receipts"]
    finally:
        again.close()
    assert "idle timeout: no SFTP traffic for 1 s" in messages(world, gw, "ERROR")


def test_a_client_that_stops_answering_is_dropped_by_keepalives(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    tmp_path: Path,
) -> None:
    gw = start_gw(
        Limits(
            idle_timeout=0, keepalive_interval=0.5, keepalive_count_max=2, max_sessions_per_user=1
        )
    )
    acme = make_partner("acme")
    sessions = gw.gateway.services.sessions
    proc = subprocess.Popen(  # an interactive OpenSSH sftp that will hang (a frozen laptop)
        [
            "sftp",
            "-P",
            str(gw.port),
            "-i",
            str(acme.private_path),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts_file(gw, tmp_path)}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "acme@127.0.0.1",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: sessions.active("acme") == 1, what="the session to start", timeout=30)
        os.killpg(proc.pid, signal.SIGSTOP)  # still connected, but answers nothing
        wait_for(lambda: sessions.active("acme") == 0, what="the keepalives to give up", timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        os.killpg(proc.pid, signal.SIGCONT)
        proc.wait(10)
    client = paramiko_sftp(gw, acme)
    try:
        assert client.listdir("/") == ["receipts"]
    finally:
        client.close()
