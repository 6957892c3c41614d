"""What ``bench/gateway.py`` uploads to: moto in its own process with the landing bucket, the
ledger table and a Transfer server with the partner; the gateway in its own process; and the
peers (OpenSSH sshd, rclone serve sftp, the asyncssh null sink). Every process started is
appended to ``procs``, for the caller to stop."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from sftp_servers import (
    free_port,
    known_hosts_for,
    start_json_child,
    start_rclone,
    start_sshd,
    wait_port,
)

from ingest.adapters.multipart import STREAMING_S3_CONFIG
from ingest_local.tables import create_pk_sk_table

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
BUCKET = "bench-landing-123456789012"
LEDGER = "bench-ledger"
ROLE = "arn:aws:iam::123456789012:role/bench-TransferUserRole"

Procs = list[subprocess.Popen[str]]


@dataclass
class Server:
    """An SFTP server the payload goes to: its port, the known_hosts file that trusts it,
    and its process id (0 where the benchmark does not watch it)."""

    port: int
    known_hosts: Path
    pid: int = 0


@dataclass
class Rig:
    """The payload, the S3 it lands in, the partner's key, and the servers to upload to."""

    src: Path
    size: int
    work: Path
    s3: Any
    moto_pid: int
    key_path: Path
    gateway: Server
    sshd: Server
    null: Server
    rclone: Server | None


def write_payload(work: Path, size_mib: int) -> Path:
    """``size_mib`` MiB of one random MiB, repeated."""
    src = work / "payload.bin"
    with src.open("wb") as fh:
        chunk = os.urandom(1024 * 1024)
        for _ in range(size_mib):
            fh.write(chunk)
    return src


def start_moto(procs: Procs) -> tuple[str, int]:
    """``python -m moto.server`` on a free port; its endpoint URL and pid."""
    moto_port = free_port()
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    )
    wait_port(moto_port)
    return f"http://127.0.0.1:{moto_port}", procs[-1].pid


def deploy(endpoint: str) -> tuple[Any, Any, str]:
    """The landing bucket, the ledger table and a Transfer server; the S3 and Transfer
    clients, and the server id."""
    # the same client settings the gateway uses, so both sides do the same work per byte
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, config=STREAMING_S3_CONFIG)
    s3.create_bucket(Bucket=BUCKET)
    # versioned like the template's landing bucket (rclone also needs real version ids:
    # moto answers its HEAD ?versionId=null on an unversioned bucket with 400)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_pk_sk_table(ddb, LEDGER)
    transfer = boto3.client("transfer", endpoint_url=endpoint, region_name=REGION)
    server_id = transfer.create_server(Domain="S3", Protocols=["SFTP"])["ServerId"]
    return s3, transfer, server_id


def add_bench_partner(work: Path, transfer: Any, server_id: str) -> tuple[Path, str]:
    """A key pair for partner ``bench``, registered with the Transfer server; the private
    key's path and the public key."""
    import asyncssh

    from ingest.adapters.partners import add_partner

    user_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = work / "id_ed25519"
    user_key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    pub = user_key.export_public_key("openssh").decode()
    add_partner(transfer, server_id, BUCKET, "bench", pub, role=ROLE, state_dir=work / "state")
    return key_path, pub


def start_gateway(
    args: argparse.Namespace, work: Path, procs: Procs, endpoint: str, server_id: str
) -> Server:
    """``python -m ingest_local.gateway`` against moto, in its own process."""
    info = start_json_child(
        [
            sys.executable,
            "-m",
            "ingest_local.gateway",
            "--endpoint-url",
            endpoint,
            "--bucket",
            BUCKET,
            "--server-id",
            server_id,
            "--state-dir",
            str(work / "state"),
            "--parts-in-flight",
            str(args.parts_in_flight),
        ],
        procs,
        ROOT,
    )
    host_pubs = [
        (work / "state" / f"{n}.pub").read_text()
        for n in ("ssh_host_ed25519_key", "ssh_host_rsa_key")
    ]
    known = known_hosts_for(info["port"], host_pubs, work / "known_gw")
    return Server(info["port"], known, info["pid"])


def start_null_sink(work: Path, procs: Procs) -> Server:
    """``bench/null_sftp.py``: an asyncssh SFTP server that discards the bytes."""
    null_key = work / "null_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(null_key)], check=True)
    info = start_json_child(
        [sys.executable, str(ROOT / "bench" / "null_sftp.py"), str(null_key)], procs, ROOT
    )
    known = known_hosts_for(
        info["port"], [Path(f"{null_key}.pub").read_text()], work / "known_null"
    )
    return Server(info["port"], known, info["pid"])


def start_rig(args: argparse.Namespace, work: Path, procs: Procs) -> Rig:
    """Everything the benchmark uploads to, started in this order: moto, the gateway, sshd,
    rclone (unless ``--skip-rclone``), the null sink."""
    src = write_payload(work, args.size_mib)
    endpoint, moto_pid = start_moto(procs)
    s3, transfer, server_id = deploy(endpoint)
    key_path, pub = add_bench_partner(work, transfer, server_id)
    gateway = start_gateway(args, work, procs, endpoint, server_id)
    sshd_port, sshd_known = start_sshd(work, pub, procs)
    rclone_port = (
        None
        if args.skip_rclone
        else start_rclone(
            work, pub, procs, endpoint=endpoint, region=REGION, remote=f"{BUCKET}/rclone"
        )
    )
    rclone = None
    if rclone_port is not None:
        rclone_known = known_hosts_for(
            rclone_port, [(work / "rclone_host_key.pub").read_text()], work / "known_rclone"
        )
        rclone = Server(rclone_port, rclone_known)
    null = start_null_sink(work, procs)
    return Rig(
        src=src,
        size=args.size_mib * 1024 * 1024,
        work=work,
        s3=s3,
        moto_pid=moto_pid,
        key_path=key_path,
        gateway=gateway,
        sshd=Server(sshd_port, sshd_known),
        null=null,
        rclone=rclone,
    )
