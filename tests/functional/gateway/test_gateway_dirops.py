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
    asyncssh_connect,
    log_entries,
    openssh_sftp,
    paramiko_sftp,
    transfer_events,
    wait_for_upload_failed,
)


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
        assert client.listdir("/") == ["receipts", "orders"]
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
        assert client.listdir("/") == ["receipts"]
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


def test_out_of_order_writes_within_the_window_work(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("acme")
    block = 256 * 1024
    data = bytes(i % 251 for i in range(block * 48))  # 12 MiB: crosses a part boundary

    async def upload() -> None:
        async with (
            asyncssh_connect(gw, partner, tmp_path) as conn,
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
    read_events = transfer_events(world)
    s3 = world.client("s3")
    s3.put_object(Bucket=world.bucket, Key="inbound/acme/keep.bin", Body=b"the original\n")

    async def attempt(name: str, writes: list[tuple[int, bytes]]) -> tuple[str, str]:
        """Write, expect one refusal, then close: the close must fail as well."""
        async with (
            asyncssh_connect(gw, partner, tmp_path) as conn,
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
    for name in cases:
        detail = wait_for_upload_failed(gw, read_events, world, f"inbound/acme/{name}")
        assert "an earlier write was refused" in detail["failure-message"]

    async def append() -> str:
        async with (
            asyncssh_connect(gw, partner, tmp_path) as conn,
            conn.start_sftp_client() as sftp,
        ):
            with pytest.raises(asyncssh.SFTPError) as info:
                await sftp.open("keep.bin", "ab")
            return str(info.value)

    assert "appending is not supported" in asyncio.run(append())


W, R, C, T, X = (
    asyncssh.FXF_WRITE,
    asyncssh.FXF_READ,
    asyncssh.FXF_CREAT,
    asyncssh.FXF_TRUNC,
    asyncssh.FXF_EXCL,
)
#: (open flags, whether the file exists, what must happen). OpenSSH's put, paramiko's "w",
#: WinSCP and FileZilla send W|C|T; paramiko's "r+" is R|W, "x" is W|C|X, "a" is W|C|APPEND.
OPEN_CASES: list[tuple[str, int, bool, str]] = [
    ("put / w, existing", W | C | T, True, "replaced"),
    ("put / w, new", W | C | T, False, "created"),
    ("w+ (R|W|C|T), existing", R | W | C | T, True, "replaced"),
    ("W|T without C, existing", W | T, True, "replaced"),
    ("W|T without C, new", W | T, False, "SFTPNoSuchFile"),
    ("W|C, new: a fresh create", W | C, False, "created"),
    ("W|C, existing", W | C, True, "SFTPOpUnsupported"),
    ("W alone, existing", W, True, "SFTPOpUnsupported"),
    ("W alone, new", W, False, "SFTPNoSuchFile"),
    ("r+ (R|W), existing", R | W, True, "SFTPOpUnsupported"),
    ("r+ (R|W), new", R | W, False, "SFTPNoSuchFile"),
    ("x (W|C|X), existing", W | C | X, True, "SFTPFailure"),
    ("x (W|C|X), new", W | C | X, False, "created"),
    ("a (W|C|APPEND), existing", W | C | asyncssh.FXF_APPEND, True, "SFTPOpUnsupported"),
    ("paramiko x (C|X, no W), existing", C | X, True, "SFTPFailure"),
    ("paramiko x (C|X, no W), new", C | X, False, "created"),
]


def test_write_opens_never_truncate_without_trunc(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("acme")
    s3 = world.client("s3")
    original = b"the original\n"

    async def attempt(conn: asyncssh.SSHClientConnection, flags: int) -> str:
        async with conn.start_sftp_client() as sftp:
            try:
                fh = await sftp.open("f.bin", flags, encoding=None)
            except asyncssh.SFTPError as exc:
                return type(exc).__name__
            await fh.write(b"x", 0)
            await fh.close()
            return "written"

    async def run_cases() -> dict[str, tuple[str, bytes | None]]:
        outcomes: dict[str, tuple[str, bytes | None]] = {}
        async with asyncssh_connect(gw, partner, tmp_path) as conn:
            for name, flags, exists, _ in OPEN_CASES:
                s3.delete_object(Bucket=world.bucket, Key="inbound/acme/f.bin")
                if exists:
                    s3.put_object(Bucket=world.bucket, Key="inbound/acme/f.bin", Body=original)
                result = await attempt(conn, flags)
                try:
                    got = s3.get_object(Bucket=world.bucket, Key="inbound/acme/f.bin")
                    body: bytes | None = got["Body"].read()
                except s3.exceptions.NoSuchKey:
                    body = None
                outcomes[name] = (result, body)
        return outcomes

    outcomes = asyncio.run(run_cases())
    for name, _, exists, expected in OPEN_CASES:
        result, body = outcomes[name]
        if expected in ("replaced", "created"):
            assert (result, body) == ("written", b"x"), name
        else:
            assert result == expected, name
            assert body == (original if exists else None), f"{name}: the file was changed"


def test_paramiko_r_plus_on_an_existing_file_leaves_it_intact(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld
) -> None:
    s3 = world.client("s3")
    s3.put_object(Bucket=world.bucket, Key="inbound/acme/keep.csv", Body=b"id\n1\n2\n")
    client = paramiko_sftp(gw, make_partner("acme"))
    try:
        with pytest.raises(OSError, match="without truncating it is not supported"):
            client.open("keep.csv", "r+").write(b"x")
        with pytest.raises(OSError, match="already exists"):
            client.open("keep.csv", "x")  # CREAT|EXCL, without WRITE
        client.open("new.csv", "x").close()  # creates it (paramiko refuses writes to "x")
        with client.open("keep.csv", "w") as fh:  # replacing it whole still works
            fh.write(b"id\n3\n")
    finally:
        client.close()

    def body(key: str) -> bytes:
        return bytes(s3.get_object(Bucket=world.bucket, Key=f"inbound/acme/{key}")["Body"].read())

    assert body("keep.csv") == b"id\n3\n"
    assert body("new.csv") == b""
