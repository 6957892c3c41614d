"""Directory operations over S3, as Transfer Family does them, with real clients."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from pathlib import Path

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

from ingest.ledger import FileStatus, Ledger


def keys(world: AwsWorld, prefix: str) -> list[str]:
    listed = world.client("s3").list_objects_v2(Bucket=world.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_mkdir_list_stat_rename_delete_rmdir(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld
) -> None:
    client = paramiko_sftp(gw, make_partner("acme"))
    try:
        client.mkdir("orders")
        with pytest.raises(OSError):
            client.mkdir("orders")  # exists
        assert keys(world, "inbound/acme/") == ["inbound/acme/orders/"]
        with client.open("orders/a.csv", "wb") as fh:
            fh.write(b"id\n1\n")
        assert client.listdir("/") == ["orders"]
        assert client.listdir("orders") == ["a.csv"]
        assert stat.S_ISDIR(client.stat("orders").st_mode or 0)
        st = client.stat("orders/a.csv")
        assert stat.S_ISREG(st.st_mode or 0)
        assert st.st_size == 5
        with pytest.raises(FileNotFoundError):
            client.stat("orders/missing.csv")
        with pytest.raises(FileNotFoundError):
            client.listdir("nowhere")

        # chmod / utime / chown succeed as no-ops (WinSCP and FileZilla send them)
        client.chmod("orders/a.csv", 0o600)
        client.utime("orders/a.csv", (1_000_000, 1_000_000))
        client.chown("orders/a.csv", 1000, 1000)
        assert client.stat("orders/a.csv").st_size == 5

        with pytest.raises(OSError, match=r"not empty|Failure"):
            client.rmdir("orders")
        client.rename("orders/a.csv", "orders/b.csv")  # copy + delete
        assert keys(world, "inbound/acme/") == ["inbound/acme/orders/", "inbound/acme/orders/b.csv"]
        with client.open("orders/c.csv", "wb") as fh:
            fh.write(b"c\n")
        with pytest.raises(OSError):
            client.rename("orders/b.csv", "orders/c.csv")  # SFTPv3 rename never overwrites
        client.posix_rename("orders/b.csv", "orders/c.csv")  # posix-rename does
        assert client.open("orders/c.csv").read() == b"id\n1\n"
        with pytest.raises(OSError, match=r"not supported|Operation unsupported"):
            client.rename("orders", "orders2")
        client.remove("orders/c.csv")
        with pytest.raises(FileNotFoundError):
            client.remove("orders/c.csv")
        client.rmdir("orders")
        assert keys(world, "inbound/acme/") == []
        assert client.listdir("/") == []
    finally:
        client.close()

    gw.flush()
    kinds = [e["activity-type"] for e in log_entries(world)]
    for kind in ("MKDIR", "OPEN", "CLOSE", "SETSTAT", "RENAME", "DELETE", "RMDIR"):
        assert kind in kinds, kind
    renames = [e for e in log_entries(world) if e["activity-type"] == "RENAME"]
    assert renames[0]["new-path"] == f"/{world.bucket}/inbound/acme/orders/b.csv"


def test_openssh_batch_directory_commands(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("acme")
    src = tmp_path / "x.csv"
    src.write_text("a,b\n1,2\n")
    out = tmp_path / "back.csv"
    proc = openssh_sftp(
        gw,
        partner,
        f"mkdir in\nput -p {src} in/x.csv\nchmod 600 in/x.csv\nrename in/x.csv in/y.csv\n"
        f"get in/y.csv {out}\nls -l in\nrm in/y.csv\nrmdir in\nls\n",
        tmp_path,
    )
    assert out.read_text() == "a,b\n1,2\n"
    assert "y.csv" in proc.stdout
    assert keys(world, "inbound/acme/") == []


def _asyncssh_session(gw: GatewayThread, partner: PartnerKeys, tmp_path: Path) -> object:
    return asyncssh.connect(
        "127.0.0.1",
        gw.port,
        username=partner.name,
        client_keys=[partner.key],
        known_hosts=asyncssh.import_known_hosts(known_hosts_file(gw, tmp_path).read_text()),
    )


def test_out_of_order_writes_within_the_window_work(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("acme")
    block = 256 * 1024
    data = bytes(i % 251 for i in range(block * 48))  # 12 MiB: crosses a part boundary

    async def upload() -> None:
        async with (
            _asyncssh_session(gw, partner, tmp_path) as conn,  # type: ignore[attr-defined]
            conn.start_sftp_client() as sftp,
        ):
            fh = await sftp.open("shuffled.bin", "wb")
            for start in range(0, len(data), block * 4):
                # each group of four blocks arrives in reverse order
                for off in sorted(range(start, start + block * 4, block), reverse=True):
                    await fh.write(data[off : off + block], off)
            await fh.close()

    asyncio.run(upload())
    got = world.client("s3").get_object(Bucket=world.bucket, Key="inbound/acme/shuffled.bin")
    assert got["Body"].read() == data


def test_random_access_writes_are_refused_and_spoil_the_upload(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("acme")
    s3 = world.client("s3")
    s3.put_object(Bucket=world.bucket, Key="inbound/acme/keep.bin", Body=b"the original\n")

    async def attempt(name: str, writes: list[tuple[int, bytes]]) -> tuple[str, str]:
        """Write, expect one refusal, then close: the close must fail as well."""
        async with (
            _asyncssh_session(gw, partner, tmp_path) as conn,  # type: ignore[attr-defined]
            conn.start_sftp_client() as sftp,
        ):
            fh = await sftp.open(name, "wb")
            refused = ""
            for offset, data in writes:
                try:
                    await fh.write(data, offset)
                except asyncssh.SFTPFailure as exc:
                    refused = str(exc)
                    break
            with pytest.raises(asyncssh.SFTPFailure) as closing:
                await fh.close()
            return refused, str(closing.value)

    part = 9 * 1024 * 1024
    cases = {
        # resume-style: the first write is far beyond the start
        "keep.bin": [(100 * 1024 * 1024, b"x" * 1024)],
        # rewriting bytes that already went to S3 as part 1
        "rewrite.bin": [(0, b"a" * part), (10, b"b")],
    }
    refusals = {name: asyncio.run(attempt(name, writes)) for name, writes in cases.items()}
    assert "resume and random-access writes are not supported" in refusals["keep.bin"][0]
    assert "already uploaded" in refusals["rewrite.bin"][0]
    for _, on_close in refusals.values():
        assert "an earlier write was refused" in on_close

    # nothing landed, and the existing object was not clobbered by a truncated one
    assert keys(world, "inbound/acme/") == ["inbound/acme/keep.bin"]
    body = s3.get_object(Bucket=world.bucket, Key="inbound/acme/keep.bin")["Body"].read()
    assert body == b"the original\n"
    assert s3.list_multipart_uploads(Bucket=world.bucket).get("Uploads", []) == []
    ledger = Ledger(world.client("dynamodb"), world.ledger_table)
    for name in cases:
        entry = ledger.get_file(f"inbound/acme/{name}")
        assert entry is not None
        assert entry.status == FileStatus.PARTIAL

    async def append() -> str:
        async with (
            _asyncssh_session(gw, partner, tmp_path) as conn,  # type: ignore[attr-defined]
            conn.start_sftp_client() as sftp,
        ):
            with pytest.raises(asyncssh.SFTPError) as info:
                await sftp.open("keep.bin", "ab")
            return str(info.value)

    assert "appending is not supported" in asyncio.run(append())
