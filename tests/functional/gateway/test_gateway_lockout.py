"""Lockout counts failed logins, not the keys a client offers before the right one."""

from __future__ import annotations

import socket
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

LOCALHOST = "127.0.0.1"


def other_keys(tmp_path: Path, count: int) -> list[Path]:
    """Keys the gateway does not know, as on a partner's agent or in its ~/.ssh."""
    paths = []
    for n in range(count):
        path = tmp_path / f"other_{n}_ed25519"
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
        path.chmod(0o600)
        paths.append(path)
    return paths


def auth_failures(world: AwsWorld, gw: GatewayThread) -> list[str]:
    gw.flush()
    return [
        str(e.get("message")) for e in log_entries(world) if e["activity-type"] == "AUTH_FAILURE"
    ]


def test_keys_refused_before_the_right_one_do_not_lock_the_partner_out(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    gw = start_gw(Limits(max_auth_failures=3))
    acme = make_partner("acme")
    offered = [*other_keys(tmp_path, 4), acme.private_path]  # sftp -i w1 … -i w4 -i right
    for _ in range(5):  # more logins than the lockout threshold: every one gets in
        proc = openssh_sftp(gw, acme, "ls\n", tmp_path, identities=offered)
        assert proc.returncode == 0
    assert not gw.gateway.services.guard.is_locked(LOCALHOST)
    failures = auth_failures(world, gw)
    assert failures.count("unknown user or key") == 20  # each refused key is still logged
    assert not [m for m in failures if "locked out" in m or "without authenticating" in m]
    gw.flush()
    assert len([e for e in log_entries(world) if e["activity-type"] == "CONNECTED"]) == 5


def test_failed_logins_lock_the_address_out(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    gw = start_gw(Limits(max_auth_failures=3, failure_window=60, lockout_seconds=60))
    acme = make_partner("acme")
    stranger = make_partner("stranger", register=False)
    for _ in range(2):
        proc = openssh_sftp(gw, stranger, "ls\n", tmp_path, check=False)
        assert "Permission denied (publickey)" in proc.stderr
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_sftp(gw, stranger)
    # each failed login is counted when its connection ends, just after the client gave up
    wait_for(lambda: gw.gateway.services.guard.is_locked(LOCALHOST), what="the lockout", timeout=30)
    # now even the right key from the same address is turned away
    proc = openssh_sftp(gw, acme, "ls\n", tmp_path, check=False)
    assert proc.returncode == 255
    assert "too many authentication failures from this address" in proc.stderr
    failures = auth_failures(world, gw)
    assert sum("without authenticating" in m for m in failures) == 3
    assert any(m.endswith("source address locked out") for m in failures)
    assert "source address is locked out" in failures
    gw.flush()
    assert not [e for e in log_entries(world) if e["activity-type"] == "CONNECTED"]

    # the operator lifts it (Gateway.unlock, on the gateway's loop)
    async def unlock() -> list[str]:
        return gw.gateway.unlock(LOCALHOST)

    assert gw.call(unlock()) == [LOCALHOST]
    openssh_sftp(gw, acme, "ls\n", tmp_path)


def test_a_connection_out_of_attempts_is_cut_off_and_counts_once(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    gw = start_gw(Limits(max_auth_tries=3, max_auth_failures=2))
    acme = make_partner("acme")
    offered = [*other_keys(tmp_path, 3), acme.private_path]
    proc = openssh_sftp(gw, acme, "ls\n", tmp_path, identities=offered, check=False)
    assert proc.returncode == 255
    assert "too many authentication failures" in proc.stderr
    wait_for(
        lambda: any("without authenticating" in m for m in auth_failures(world, gw)),
        what="the failed login",
        timeout=30,
    )
    assert not gw.gateway.services.guard.is_locked(LOCALHOST)  # one failed login, not three
    openssh_sftp(gw, acme, "ls\n", tmp_path, identities=offered[2:])  # one wrong key: fine
    proc = openssh_sftp(gw, acme, "ls\n", tmp_path, identities=offered, check=False)
    assert proc.returncode == 255
    wait_for(lambda: gw.gateway.services.guard.is_locked(LOCALHOST), what="the lockout", timeout=30)
    assert "too many authentication failures (3)" in auth_failures(world, gw)


def test_connections_logging_in_at_once_are_capped_per_address(
    start_gw: Callable[..., GatewayThread],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    gw = start_gw(Limits(max_unauthenticated_per_ip=2))
    acme = make_partner("acme")
    logins = gw.gateway.services.logins
    silent = [socket.create_connection((LOCALHOST, gw.port), timeout=30) for _ in range(2)]
    try:
        wait_for(
            lambda: logins.active(LOCALHOST) == 2, what="two connections logging in", timeout=30
        )
        proc = openssh_sftp(gw, acme, "ls\n", tmp_path, check=False)
        assert proc.returncode == 255
    finally:
        for sock in silent:
            sock.close()
    wait_for(
        lambda: logins.active(LOCALHOST) == 0, what="the silent connections to end", timeout=30
    )
    openssh_sftp(gw, acme, "ls\n", tmp_path)
    gw.flush()
    errors = [e for e in log_entries(world) if e["activity-type"] == "ERROR"]
    assert any(
        "2 connections from this address are already logging in" in e["message"] for e in errors
    )
    assert not gw.gateway.services.guard.is_locked(LOCALHOST)  # refused, not a failed login
