"""Renames emit Transfer's "SFTP Server File Rename Completed|Failed" EventBridge events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_kit import (
    RENAME_EVENTS,
    AwsWorld,
    GatewayThread,
    PartnerKeys,
    openssh_sftp,
    paramiko_sftp,
    transfer_events,
)

DETAIL_FIELDS = {
    "client-ip",
    "end-timestamp",
    "original-file-path",
    "protocol",
    "renamed-file-path",
    "server-id",
    "session-id",
    "start-timestamp",
    "status-code",
    "username",
}


def test_rename_emits_completed_and_failed_events(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    read_events = transfer_events(world, RENAME_EVENTS)
    src = tmp_path / "a.csv"
    src.write_text("id\n1\n")
    openssh_sftp(gw, make_partner("acme"), f"put {src} a.csv\nrename a.csv b.csv\n", tmp_path)
    client = paramiko_sftp(gw, make_partner("globex"))
    try:
        with client.open("x.csv", "wb") as fh:
            fh.write(b"x\n")
        with pytest.raises(FileNotFoundError):
            client.rename("missing.csv", "y.csv")
        with pytest.raises(OSError):
            client.rename("x.csv", "x.csv")  # SFTPv3 rename never overwrites
    finally:
        client.close()
    gw.flush()

    events = read_events()
    assert {e["source"] for e in events} == {"aws.transfer"}
    by_path = {(e["detail"]["username"], e["detail"]["original-file-path"]): e for e in events}
    assert len(events) == 3

    done = by_path[("acme", f"/{world.bucket}/inbound/acme/a.csv")]
    assert done["detail-type"] == "SFTP Server File Rename Completed"
    assert done["resources"] == [gw.gateway.services.audit.server_arn]
    detail = done["detail"]
    assert set(detail) == DETAIL_FIELDS
    assert detail["renamed-file-path"] == f"/{world.bucket}/inbound/acme/b.csv"
    assert detail["status-code"] == "COMPLETED"
    assert detail["protocol"] == "SFTP"
    assert detail["server-id"] == world.server_id
    assert detail["client-ip"] == "127.0.0.1"
    assert detail["start-timestamp"] <= detail["end-timestamp"]

    missing = by_path[("globex", f"/{world.bucket}/inbound/globex/missing.csv")]
    assert missing["detail-type"] == "SFTP Server File Rename Failed"
    assert set(missing["detail"]) == DETAIL_FIELDS | {"failure-code", "failure-message"}
    assert missing["detail"]["status-code"] == "FAILED"
    assert missing["detail"]["failure-code"] == "FILE_NOT_FOUND"
    exists = by_path[("globex", f"/{world.bucket}/inbound/globex/x.csv")]
    assert exists["detail"]["failure-code"] == "FAILURE"
    assert exists["detail"]["failure-message"] == "target already exists"
    s3 = world.client("s3")
    assert s3.get_object(Bucket=world.bucket, Key="inbound/acme/b.csv")["Body"].read() == b"id\n1\n"


def test_refused_paths_emit_no_rename_event(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld
) -> None:
    read_events = transfer_events(world, RENAME_EVENTS)
    client = paramiko_sftp(gw, make_partner("acme"))
    try:
        with client.open("mine.csv", "wb") as fh:
            fh.write(b"x\n")
        with pytest.raises(PermissionError):
            client.rename("mine.csv", "../victim/mine.csv")
        client.posix_rename("mine.csv", "ours.csv")
    finally:
        client.close()
    gw.flush()
    events = read_events()
    assert [e["detail"]["renamed-file-path"] for e in events] == [
        f"/{world.bucket}/inbound/acme/ours.csv"
    ]
