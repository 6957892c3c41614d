"""Path-escape attempts through a real paramiko client: every one refused and logged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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

LONG = "x" * 256


Op = Callable[[paramiko.SFTPClient, str], object]


def _write(path: str) -> Op:
    def op(c: paramiko.SFTPClient, bucket: str) -> object:
        with c.open(path.format(bucket=bucket), "wb") as fh:
            fh.write(b"pwned\n")
        return None

    return op


# (description, operation): each must raise PermissionError from the gateway.
ATTEMPTS: list[tuple[str, Op]] = [
    ("write ../victim/x", _write("../victim/x.csv")),
    ("write /../victim/x", _write("/../victim/x.csv")),
    ("write /../../victim/x", _write("/../../victim/x.csv")),
    ("write a/../../victim/x", _write("a/../../victim/x.csv")),
    ("write ./../victim", _write("./../victim/x.csv")),
    ("write //..//..//victim", _write("//..//..//victim/x.csv")),
    ("write absolute physical bucket path", _write("/{bucket}/inbound/victim/x.csv")),
    ("write absolute inbound path", _write("/inbound/victim/x.csv")),
    ("write inbound path relative", _write("inbound/victim/x.csv")),
    ("write with NUL", _write("ok.csv\x00../../victim/x.csv")),
    ("write with newline", _write("bad\nname.csv")),
    ("write with escape char", _write("bad\x1bname.csv")),
    ("write with DEL char", _write("bad\x7fname.csv")),
    ("write with backslashes", _write("..\\..\\victim\\x.csv")),
    ("write with a right-to-left override", _write("invoice\u202efdp.exe")),
    ("write with a zero-width space", _write("orders\u200b.csv")),
    ("write with a BOM", _write("\ufefforders.csv")),
    ("write with a line separator", _write("bad\u2028name.csv")),
    ("mkdir with a C1 next-line", lambda c, b: c.mkdir("dir\u0085name")),
    ("rename to a zero-width joiner name", lambda c, b: c.rename("mine.csv", "mi\u200dne.csv")),
    ("write overlong name", _write(LONG + ".csv")),
    ("write overlong key", _write("/".join(["d" * 200] * 6) + "/x.csv")),
    ("list ..", lambda c, b: c.listdir("..")),
    ("list /../victim", lambda c, b: c.listdir("/../victim")),
    ("list physical bucket", lambda c, b: c.listdir(f"/{b}")),
    ("stat ../victim/secret.csv", lambda c, b: c.stat("../victim/secret.csv")),
    ("read ../victim/secret.csv", lambda c, b: c.open("../victim/secret.csv", "rb").read()),
    ("read /inbound/victim/secret.csv", lambda c, b: c.open("/inbound/victim/secret.csv").read()),
    ("remove ../victim/secret.csv", lambda c, b: c.remove("../victim/secret.csv")),
    ("mkdir ../victim/new", lambda c, b: c.mkdir("../victim/new")),
    ("rmdir ..", lambda c, b: c.rmdir("..")),
    ("rename own file into ../victim", lambda c, b: c.rename("mine.csv", "../victim/mine.csv")),
    (
        "rename victim file into own root",
        lambda c, b: c.rename("../victim/secret.csv", "stolen.csv"),
    ),
    ("posix_rename across roots", lambda c, b: c.posix_rename("mine.csv", "/../victim/m.csv")),
    ("symlink to victim", lambda c, b: c.symlink("/../victim/secret.csv", "link.csv")),
    ("symlink inside root", lambda c, b: c.symlink("mine.csv", "link2.csv")),
    ("readlink", lambda c, b: c.readlink("mine.csv")),
    ("realpath ..", lambda c, b: c.normalize("..")),
    ("chdir .. then write", lambda c, b: (c.chdir(".."), _write("x.csv")(c, b))),
]


@pytest.fixture
def victim_and_attacker(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld
) -> tuple[PartnerKeys, PartnerKeys]:
    victim = make_partner("victim")
    attacker = make_partner("attacker")
    s3 = world.client("s3")
    s3.put_object(Bucket=world.bucket, Key="inbound/victim/secret.csv", Body=b"secret\n")
    s3.put_object(Bucket=world.bucket, Key="inbound/attacker/mine.csv", Body=b"mine\n")
    return victim, attacker


def test_escape_attempts_are_all_refused_and_logged(
    gw: GatewayThread,
    victim_and_attacker: tuple[PartnerKeys, PartnerKeys],
    world: AwsWorld,
) -> None:
    _, attacker = victim_and_attacker
    assert len(ATTEMPTS) >= 25
    client = paramiko_sftp(gw, attacker)
    outcomes: dict[str, str] = {}
    try:
        for name, op in ATTEMPTS:
            try:
                op(client, world.bucket)
                outcomes[name] = "ALLOWED"
            except PermissionError:
                outcomes[name] = "refused"
            except OSError as exc:
                outcomes[name] = f"other error: {exc!r}"
    finally:
        client.close()
    assert outcomes == {name: "refused" for name, _ in ATTEMPTS}

    s3 = world.client("s3")
    victim_keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=world.bucket, Prefix="inbound/victim/").get(
            "Contents", []
        )
    ]
    assert victim_keys == ["inbound/victim/secret.csv"]
    attacker_keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=world.bucket, Prefix="inbound/attacker/").get(
            "Contents", []
        )
    ]
    assert attacker_keys == ["inbound/attacker/mine.csv"]
    all_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=world.bucket).get("Contents", [])]
    assert not [k for k in all_keys if "pwned" in k or k.startswith("inbound/victim/x")]

    gw.flush()
    refusals = [e for e in log_entries(world) if "permission denied" in e.get("message", "")]
    assert len(refusals) >= len(ATTEMPTS)
    assert all(e["user"] == "attacker" for e in refusals)


def test_physical_bucket_paths_refused_for_listing(
    gw: GatewayThread, victim_and_attacker: tuple[PartnerKeys, PartnerKeys], world: AwsWorld
) -> None:
    _, attacker = victim_and_attacker
    client = paramiko_sftp(gw, attacker)
    try:
        with pytest.raises(PermissionError):
            client.listdir(f"/{world.bucket}/inbound/victim")
        assert client.listdir("/") == ["receipts", "mine.csv"]  # /receipts: its mapping
        assert client.normalize(".") == "/"
        assert client.normalize("a/b/../c") == "/a/c"
    finally:
        client.close()


def test_openssh_client_cannot_cd_out_or_put_across(
    gw: GatewayThread,
    victim_and_attacker: tuple[PartnerKeys, PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    _, attacker = victim_and_attacker
    src = tmp_path / "x.csv"
    src.write_text("a,b\n")
    for batch in (
        "cd ..\n",
        f"put {src} ../victim/x.csv\n",
        f"put {src} /../victim/x.csv\n",
        "ln -s /../victim/secret.csv l\n",
        "rename mine.csv ../victim/m.csv\n",
    ):
        proc = openssh_sftp(gw, attacker, batch, tmp_path, check=False)
        assert proc.returncode != 0, batch
        assert "ermission denied" in proc.stderr, (batch, proc.stderr)
    keys = [
        o["Key"]
        for o in world.client("s3")
        .list_objects_v2(Bucket=world.bucket, Prefix="inbound/victim/")
        .get("Contents", [])
    ]
    assert keys == ["inbound/victim/secret.csv"]
