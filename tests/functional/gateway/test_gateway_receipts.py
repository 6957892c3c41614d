"""A partner's read-only ``/receipts`` through the real gateway, with OpenSSH ``sftp -b`` and
paramiko: receipts and their history can be listed, stat'ed and downloaded; every write there
is refused with a permission error and leaves S3 exactly as it was; another partner's
receipts cannot be seen or reached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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

from ingest.domain.receipts import history_key, receipt_key

ETAG = "0123456789abcdef0123456789abcdef"
RECEIPT = b'{"file": "orders/a.csv", "status": "PROCESSED", "rows_ok": 2, "rows_rejected": 0}\n'
OLD_RECEIPT = b'{"file": "orders/a.csv", "status": "FAILED", "reason": "bad header"}\n'
SECRET = b'{"file": "orders/secret.csv", "status": "PROCESSED"}\n'
A_RECEIPT = "/receipts/orders/a.csv.json"
A_HISTORY = f"/receipts/.history/orders/a.csv.{ETAG}.json"


@pytest.fixture
def acme(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld
) -> PartnerKeys:
    """Partner acme with a receipt, its history version and a file of its own; partner
    globex with a receipt of its own."""
    partner = make_partner("acme")
    make_partner("globex")
    s3 = world.client("s3")
    put = {
        receipt_key("inbound/acme/orders/a.csv"): RECEIPT,
        history_key("inbound/acme/orders/a.csv", ETAG): OLD_RECEIPT,
        receipt_key("inbound/globex/orders/secret.csv"): SECRET,
        "inbound/acme/mine.csv": b"id\n1\n",
    }
    for key, body in put.items():
        assert key is not None
        s3.put_object(Bucket=world.bucket, Key=key, Body=body)
    return partner


def snapshot(world: AwsWorld) -> dict[str, Any]:
    """Every object of the bucket with its ETag, and the multipart uploads in progress."""
    s3 = world.client("s3")
    objects = {
        o["Key"]: o["ETag"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=world.bucket)
        for o in page.get("Contents", [])
    }
    uploads = s3.list_multipart_uploads(Bucket=world.bucket).get("Uploads", [])
    return {"objects": objects, "uploads": [u["Key"] for u in uploads]}


def test_a_partner_lists_stats_and_downloads_its_receipts(
    gw: GatewayThread, acme: PartnerKeys, world: AwsWorld, tmp_path: Path
) -> None:
    client = paramiko_sftp(gw, acme)
    try:
        assert client.listdir("/") == ["receipts", "mine.csv"]
        assert sorted(client.listdir("/receipts")) == [".history", "orders"]
        assert client.listdir("/receipts/orders") == ["a.csv.json"]
        assert client.listdir("/receipts/.history/orders") == [f"a.csv.{ETAG}.json"]
        assert client.stat(A_RECEIPT).st_size == len(RECEIPT)
        with client.open(A_RECEIPT, "rb") as fh:
            assert fh.read() == RECEIPT
        with client.open(A_HISTORY, "rb") as fh:
            assert fh.read() == OLD_RECEIPT
        client.chdir("/receipts")
        assert client.getcwd() == "/receipts"
        assert sorted(client.listdir(".")) == [".history", "orders"]
        assert client.normalize("/receipts/..") == "/"
    finally:
        client.close()

    out = tmp_path / "out"
    out.mkdir()
    proc = openssh_sftp(
        gw,
        acme,
        f"ls -1 /receipts/orders\nget {A_RECEIPT} {out}/a.json\nget {A_HISTORY} {out}/old.json\n",
        tmp_path,
    )
    assert "a.csv.json" in proc.stdout
    assert (out / "a.json").read_bytes() == RECEIPT
    assert (out / "old.json").read_bytes() == OLD_RECEIPT


Op = Callable[[paramiko.SFTPClient, str], object]


def _write(path: str, mode: str = "wb") -> Op:
    def op(c: paramiko.SFTPClient, bucket: str) -> object:
        with c.open(path.format(bucket=bucket), mode) as fh:
            fh.write(b"forged\n")
        return None

    return op


def _fchmod(c: paramiko.SFTPClient, bucket: str) -> object:
    with c.open(A_RECEIPT, "rb") as fh:
        fh.chmod(0o600)
    return None


#: (what, operation): each must be refused with a permission error (PermissionError).
REFUSED: list[tuple[str, Op]] = [
    ("put a new receipt", _write("/receipts/new.json")),
    ("overwrite a receipt", _write(A_RECEIPT)),
    ("overwrite a history version", _write(A_HISTORY)),
    ("open a receipt r+", _write(A_RECEIPT, "r+")),
    ("append to a receipt", _write(A_RECEIPT, "ab")),
    ("create exclusively", _write("/receipts/orders/b.csv.json", "x")),
    ("mkdir under /receipts", lambda c, b: c.mkdir("/receipts/new")),
    ("mkdir /receipts itself", lambda c, b: c.mkdir("/receipts")),
    ("rmdir /receipts/orders", lambda c, b: c.rmdir("/receipts/orders")),
    ("rmdir /receipts", lambda c, b: c.rmdir("/receipts")),
    ("rmdir /receipts/.history", lambda c, b: c.rmdir("/receipts/.history")),
    ("remove a receipt", lambda c, b: c.remove(A_RECEIPT)),
    ("remove a history version", lambda c, b: c.remove(A_HISTORY)),
    ("rename out of /receipts", lambda c, b: c.rename(A_RECEIPT, "/stolen.json")),
    ("rename into /receipts", lambda c, b: c.rename("/mine.csv", "/receipts/mine.csv")),
    ("rename within /receipts", lambda c, b: c.rename(A_RECEIPT, "/receipts/orders/z.json")),
    ("posix-rename over a receipt", lambda c, b: c.posix_rename("/mine.csv", A_RECEIPT)),
    ("rename /receipts itself", lambda c, b: c.rename("/receipts", "/r2")),
    ("chmod a receipt", lambda c, b: c.chmod(A_RECEIPT, 0o600)),
    ("utime a receipt", lambda c, b: c.utime(A_RECEIPT, (1, 1))),
    ("chmod an open receipt (fsetstat)", _fchmod),
    ("symlink into /receipts", lambda c, b: c.symlink("/mine.csv", "/receipts/link")),
    ("write via /receipts/../receipts", _write("/receipts/../receipts/x.json")),
    ("write via //receipts", _write("//receipts/x.json")),
    ("write via /receipts/./", _write("/receipts/./x.json")),
    ("write via a relative receipts/", _write("receipts/x.json")),
    ("write via ./receipts//orders", _write("./receipts//orders/x.json")),
    ("cd /receipts, then write", lambda c, b: (c.chdir("/receipts"), _write("x.json")(c, b))),
    # another partner's receipts, and the physical layout
    (
        "read globex's receipt by climbing",
        lambda c, b: c.open("/receipts/../../receipts/globex/orders/secret.csv.json").read(),
    ),
    ("list globex's receipts by climbing", lambda c, b: c.listdir("/receipts/../../receipts")),
    (
        "read globex's receipt by bucket path",
        lambda c, b: c.open(f"/{b}/receipts/globex/orders/secret.csv.json").read(),
    ),
    ("list the bucket's receipts/", lambda c, b: c.listdir(f"/{b}/receipts")),
    ("list the inbound/ layout", lambda c, b: c.listdir("/inbound")),
]


def test_writes_under_receipts_are_refused_and_change_nothing(
    gw: GatewayThread, acme: PartnerKeys, world: AwsWorld
) -> None:
    assert len(REFUSED) >= 10
    before = snapshot(world)
    outcomes: dict[str, str] = {}
    client = paramiko_sftp(gw, acme)
    try:
        for what, op in REFUSED:
            try:
                op(client, world.bucket)
                outcomes[what] = "ALLOWED"
            except PermissionError:
                outcomes[what] = "refused"
            except OSError as exc:
                outcomes[what] = f"other error: {exc!r}"
            client.chdir("/")
            # after each attempt, not only at the end: S3 is exactly as it was
            if snapshot(world) != before:
                outcomes[what] += " and S3 changed"
                before = snapshot(world)
    finally:
        client.close()
    assert outcomes == {what: "refused" for what, _ in REFUSED}

    gw.flush()
    read_only = [e for e in log_entries(world) if "is read-only" in e.get("message", "")]
    assert len(read_only) >= 20
    assert {e["user"] for e in read_only} == {"acme"}
    assert all(e["path"].startswith(f"/{world.bucket}/receipts/acme") for e in read_only)


def test_another_partners_receipts_are_invisible_at_their_name(
    gw: GatewayThread, acme: PartnerKeys
) -> None:
    """``/receipts/globex/...`` is acme's own (empty) prefix, never globex's."""
    client = paramiko_sftp(gw, acme)
    try:
        for op in (
            lambda: client.listdir("/receipts/globex"),
            lambda: client.stat("/receipts/globex/orders/secret.csv.json"),
            lambda: client.open("/receipts/globex/orders/secret.csv.json").read(),
        ):
            with pytest.raises(FileNotFoundError):
                op()
        assert "globex" not in client.listdir("/receipts")
    finally:
        client.close()


#: OpenSSH ``sftp -b`` batches (one per run: a batch stops at its first error), each refused.
OPENSSH_REFUSED = [
    "put {src} /receipts/new.json",
    "put {src} " + A_RECEIPT,
    "mkdir /receipts/d",
    "rmdir /receipts/orders",
    "rm " + A_RECEIPT,
    "rm " + A_HISTORY,
    "rename " + A_RECEIPT + " /stolen.json",
    "rename /mine.csv /receipts/mine.csv",
    "chmod 600 " + A_RECEIPT,
    "ln -s /mine.csv /receipts/link",
    "put {src} /receipts/../receipts/x.json",
    "put {src} //receipts/x.json",
    "cd /receipts\nput {src} x.json",
]
#: Another partner's receipts: OpenSSH's glob reports a refused path as "not found".
OPENSSH_UNREACHABLE = [
    "get /receipts/../../receipts/globex/orders/secret.csv.json {out}",
    "get /receipts/globex/orders/secret.csv.json {out}",
    "ls /receipts/../../receipts/globex",
    "cd /receipts/../..",
]


def test_openssh_sftp_cannot_write_under_receipts(
    gw: GatewayThread, acme: PartnerKeys, world: AwsWorld, tmp_path: Path
) -> None:
    src = tmp_path / "forged.json"
    src.write_text('{"status": "PROCESSED"}\n')
    out = tmp_path / "stolen.json"
    before = snapshot(world)
    for batch in OPENSSH_REFUSED:
        proc = openssh_sftp(gw, acme, batch.format(src=src, out=out) + "\n", tmp_path, check=False)
        assert proc.returncode != 0, (batch, proc.stdout, proc.stderr)
        assert "Permission denied" in proc.stderr, (batch, proc.stderr)
        assert snapshot(world) == before, batch
    for batch in OPENSSH_UNREACHABLE:
        proc = openssh_sftp(gw, acme, batch.format(out=out) + "\n", tmp_path, check=False)
        assert proc.returncode != 0, (batch, proc.stdout, proc.stderr)
        assert "secret" not in proc.stdout.replace(batch.format(out=out), ""), proc.stdout
    assert not out.exists()
    assert snapshot(world) == before
    gw.flush()
    climbs = [e for e in log_entries(world) if "climbs above" in e.get("message", "")]
    assert len(climbs) >= 3
