"""Real clients upload CSV, gzip and JSONL files through the gateway; S3 gets them byte-exact."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_kit import (
    AwsWorld,
    GatewayThread,
    PartnerKeys,
    log_entries,
    openssh_sftp,
    paramiko_sftp,
    transfer_events,
)
from support_aws import s3_crc32

CSV = "order_id,amount,quantity\n" + "".join(f"o{i},{i}.50,{i % 7}\n" for i in range(2000))
JSONL = "".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in range(1500))


def sample_files(tmp_path: Path) -> dict[str, bytes]:
    files = {
        "orders.csv": CSV.encode(),
        "orders.csv.gz": gzip.compress(CSV.encode()),
        "events.jsonl": JSONL.encode(),
        # over one 8 MiB part: goes through CreateMultipartUpload/UploadPart/Complete
        "big.jsonl": (JSONL * 200).encode(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return files


def assert_landed(world: AwsWorld, prefix: str, files: dict[str, bytes]) -> None:
    s3 = world.client("s3")
    for name, data in files.items():
        body = s3.get_object(Bucket=world.bucket, Key=f"{prefix}{name}")["Body"].read()
        assert body == data, name


def test_openssh_sftp_batch_uploads_land_byte_exact(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    read_events = transfer_events(world)
    partner = make_partner("acme")
    files = sample_files(tmp_path)
    batch = "mkdir orders\ncd orders\n" + "".join(f"put {tmp_path / n}\n" for n in files)
    proc = openssh_sftp(gw, partner, batch + "ls -l\n", tmp_path)
    for name in files:
        assert name in proc.stdout

    assert_landed(world, "inbound/acme/orders/", files)
    head = world.client("s3").head_object(Bucket=world.bucket, Key="inbound/acme/orders/big.jsonl")
    assert head["ETag"].strip('"').endswith("-2"), "a file over 8 MiB is uploaded in parts"

    gw.flush()
    connected = [e for e in log_entries(world) if e["activity-type"] == "CONNECTED"]
    assert len(connected) == 1
    assert connected[0]["ssh-public-key"] == partner.public_line.split()[1]
    assert connected[0]["ssh-public-key-fingerprint"] == partner.key.get_fingerprint("sha256")
    assert connected[0]["client"].startswith("SSH-2.0-OpenSSH")
    assert connected[0]["home-dir"] == "/"
    closes = {e["path"]: e for e in log_entries(world) if e["activity-type"] == "CLOSE"}
    for name, data in files.items():
        entry = closes[f"/{world.bucket}/inbound/acme/orders/{name}"]
        assert entry["bytes-in"] == len(data)
        assert entry["user"] == "acme"
        assert entry["resource-arn"].endswith(f":server/{world.server_id}")

    events = read_events()
    completed = {e["detail"]["file-path"]: e for e in events}
    assert len(events) == len(files)
    for name, data in files.items():
        event = completed[f"/{world.bucket}/inbound/acme/orders/{name}"]
        assert event["source"] == "aws.transfer"
        assert event["detail-type"] == "SFTP Server File Upload Completed"
        detail = event["detail"]
        assert detail["status-code"] == "COMPLETED"
        assert detail["bytes"] == len(data)
        assert detail["server-id"] == world.server_id
        assert detail["username"] == "acme"
        assert detail["protocol"] == "SFTP"
        assert detail["client-ip"] == "127.0.0.1"
        assert detail["start-timestamp"] <= detail["end-timestamp"]


def test_paramiko_uploads_land_byte_exact(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("globex")
    files = sample_files(tmp_path)
    client = paramiko_sftp(gw, partner)
    try:
        client.mkdir("events")
        for name in files:
            client.put(str(tmp_path / name), f"events/{name}")
        assert sorted(client.listdir("events")) == sorted(files)
        # read back through the gateway too (downloads are served with ranged GETs)
        with client.open("events/orders.csv.gz", "rb") as fh:
            assert gzip.decompress(fh.read()).decode() == CSV
    finally:
        client.close()
    assert_landed(world, "inbound/globex/events/", files)


def test_overwrite_replaces_object(
    gw: GatewayThread, make_partner: Callable[..., PartnerKeys], world: AwsWorld, tmp_path: Path
) -> None:
    partner = make_partner("initech")
    client = paramiko_sftp(gw, partner)
    try:
        for body in (b"first version\n", b"second\n"):
            with client.open("same.csv", "wb") as fh:
                fh.write(body)
    finally:
        client.close()
    got = world.client("s3").get_object(Bucket=world.bucket, Key="inbound/initech/same.csv")
    assert got["Body"].read() == b"second\n"


@pytest.mark.parametrize("size", [0, 1, 8 * 1024 * 1024, 8 * 1024 * 1024 + 1])
def test_part_boundaries(
    gw: GatewayThread,
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
    size: int,
) -> None:
    partner = make_partner(f"edge{size}")
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    openssh_sftp(gw, partner, f"put {src} f.bin\n", tmp_path)
    got = world.client("s3").get_object(
        Bucket=world.bucket, Key=f"inbound/edge{size}/f.bin", ChecksumMode="ENABLED"
    )
    assert got["Body"].read() == data
    # every part went up with a CRC32 that S3 checked; the object keeps the composite
    part_size = 8 * 1024 * 1024 if size >= 8 * 1024 * 1024 else None  # a full part ships
    assert got["ChecksumCRC32"] == s3_crc32(data, part_size)
