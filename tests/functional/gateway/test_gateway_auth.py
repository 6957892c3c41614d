"""Authentication against the Transfer API: keys, lockout, grace timeout, session limit."""

from __future__ import annotations

import socket
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
    log_entries,
    openssh_sftp,
    paramiko_sftp,
)
from support_aws import wait_for

from ingest_local.gateway import Limits


def _activities(world: AwsWorld, gw: GatewayThread, kind: str) -> list[dict[str, object]]:
    gw.flush()
    return [e for e in log_entries(world) if e["activity-type"] == kind]


def test_unknown_key_and_unknown_user_are_refused(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    make_partner("acme")
    stranger = make_partner("stranger", register=False)
    impostor = PartnerKeys("acme", stranger.private_path, stranger.public_line, stranger.key)
    for who in (stranger, impostor):
        proc = openssh_sftp(gw, who, "ls\n", tmp_path, check=False)
        assert proc.returncode == 255
        assert "Permission denied (publickey)" in proc.stderr
    # the refused keys (the failed logins are logged too, once each connection has ended)
    failures = [
        f for f in _activities(world, gw, "AUTH_FAILURE") if f["message"] == "unknown user or key"
    ]
    assert {f["user"] for f in failures} == {"stranger", "acme"}
    assert all(f["source-ip"] == "127.0.0.1" for f in failures)
    assert all(
        f["ssh-public-key-fingerprint"] == stranger.key.get_fingerprint("sha256") for f in failures
    )
    assert not _activities(world, gw, "CONNECTED")
    assert not _activities(world, gw, "ERROR")  # an unknown user is a refusal, not an error


def test_passwords_are_off(gw: GatewayThread, make_partner: Callable[..., PartnerKeys]) -> None:
    make_partner("acme")
    transport = paramiko.Transport(("127.0.0.1", gw.port))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as info:
            transport.auth_password("acme", "hunter2")
        assert info.value.allowed_types == ["publickey"]
    finally:
        transport.close()


def test_key_added_later_works_at_next_login(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld
) -> None:
    acme = make_partner("acme")
    laptop = make_partner("laptop", register=False)
    second = PartnerKeys("acme", laptop.private_path, laptop.public_line, laptop.key)
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_sftp(gw, second)
    world.client("transfer").import_ssh_public_key(
        ServerId=world.server_id, UserName="acme", SshPublicKeyBody=laptop.public_line
    )
    for who in (acme, second):
        client = paramiko_sftp(gw, who)
        assert client.listdir("/") == ["receipts"]
        client.close()


def test_login_grace_timeout_drops_idle_connections(
    start_gw: Callable[..., GatewayThread],
) -> None:
    gw = start_gw(Limits(login_grace_seconds=1))
    # The socket's own timeout (10 s, far beyond the 1 s grace) is what fails this test if the
    # gateway never drops the silent client; with the default grace (60 s) recv would time out.
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        banner = sock.recv(256)
        assert banner.startswith(b"SSH-2.0-AWS_SFTP_1.1")
        sock.sendall(b"SSH-2.0-slowloris\r\n")
        data = b"x"
        while data:  # the server's KEXINIT, then EOF once the grace period is over
            data = sock.recv(65536)


def test_session_limit_per_user(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
) -> None:
    gw = start_gw(Limits(max_sessions_per_user=1))
    acme = make_partner("acme")
    first = paramiko_sftp(gw, acme)
    try:
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            paramiko_sftp(gw, acme).listdir("/")
        assert first.listdir("/") == ["receipts"]
    finally:
        first.close()

    def log_in() -> paramiko.SFTPClient | None:
        try:
            return paramiko_sftp(gw, acme)
        except (paramiko.SSHException, EOFError, OSError):
            return None  # the first session's slot is freed once its connection is gone

    again = wait_for(log_in, timeout=10, what="the freed session slot")
    assert again.listdir("/") == ["receipts"]
    again.close()
    errors = _activities(world, gw, "ERROR")
    assert any("session limit of 1 reached" in str(e["message"]) for e in errors)


def test_wrong_host_key_stops_the_client_before_it_authenticates(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    acme = make_partner("acme")
    rogue = asyncssh.generate_private_key("ssh-ed25519")
    known_hosts = tmp_path / "pinned"
    known_hosts.write_text(
        f"[127.0.0.1]:{gw.port} {rogue.export_public_key('openssh').decode().strip()}\n"
    )
    proc = subprocess.run(
        [
            "sftp",
            "-b",
            "-",
            "-P",
            str(gw.port),
            "-i",
            str(acme.private_path),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "acme@127.0.0.1",
        ],
        input="ls\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in proc.stderr
    assert not _activities(world, gw, "AUTH_FAILURE")
    assert not _activities(world, gw, "CONNECTED")


def test_host_keys_persist_and_match_ssh_keygen(
    start_gw: Callable[..., GatewayThread], host_key_dir: Path
) -> None:
    first = start_gw()
    fingerprints = first.gateway.host_key_fingerprints
    first.stop()
    second = start_gw()
    assert second.gateway.host_key_fingerprints == fingerprints
    algorithms = [k.get_algorithm() for k in second.gateway.host_keys]
    assert algorithms == ["ssh-ed25519", "ssh-rsa"]
    for name, fp in zip(("ssh_host_ed25519_key", "ssh_host_rsa_key"), fingerprints, strict=True):
        out = subprocess.run(
            ["ssh-keygen", "-lf", str(host_key_dir / f"{name}.pub")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.split()[1] == fp
        assert (host_key_dir / name).stat().st_mode & 0o077 == 0
