"""What ``bench/connector.py`` measures against: OpenSSH sshd on loopback serving the files,
moto's landing bucket and ledger table, a connector to the sshd and the engine behind it, and
the peers' ways to fetch the same files (OpenSSH ``sftp -b``, rclone, asyncssh alone)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "functional" / "connectors")]

from connector_fixtures import SftpServer, start_sshd  # noqa: E402 - the tests' sshd starter

from connectors.config import create_connector  # noqa: E402
from connectors.service import BuiltinConnectorService  # noqa: E402
from connectors.transfer_engine import SFTP_BLOCK_SIZE, SFTP_MAX_REQUESTS  # noqa: E402
from connectors.wiring import build_builtin_service  # noqa: E402
from ingest.adapters.aws import AwsTarget  # noqa: E402
from ingest.adapters.multipart import STREAMING_S3_CONFIG  # noqa: E402
from ingest_local.tables import create_pk_sk_table  # noqa: E402

MIB = 1024 * 1024
BUCKET = "bench-landing"
LEDGER = "bench-ledger"


@dataclass
class Rig:
    """The running sshd with its files, the S3 side, and the connector's engine."""

    work: Path
    endpoint: str
    moto_pid: int
    aws: AwsTarget
    s3: Any
    srv: SftpServer
    client_key: asyncssh.SSHKey
    key_file: Path
    known_hosts: Path
    large: Path
    small_dir: Path
    connector: str
    service: BuiltinConnectorService

    @property
    def pids(self) -> tuple[int, int]:
        """The processes whose CPU each case is charged with besides ours: moto, sshd."""
        return self.moto_pid, self.srv.pid

    def sftp_batch(self, commands: str) -> None:
        """Run OpenSSH ``sftp -b`` with the given batch commands."""
        batch = self.key_file.parent / "batch.txt"
        batch.write_text(commands)
        subprocess.run(
            [
                "sftp",
                "-q",
                "-b",
                str(batch),
                "-P",
                str(self.srv.port),
                "-i",
                str(self.key_file),
                "-o",
                f"UserKnownHostsFile={self.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                f"root@{self.srv.host}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def rclone_copy(self, *, src: str, dst: str) -> None:
        """``rclone copy src:SRC dst:DST``: from the sshd to moto's S3."""
        env = {
            **os.environ,
            "RCLONE_CONFIG_SRC_TYPE": "sftp",
            "RCLONE_CONFIG_SRC_HOST": self.srv.host,
            "RCLONE_CONFIG_SRC_PORT": str(self.srv.port),
            "RCLONE_CONFIG_SRC_USER": "root",
            "RCLONE_CONFIG_SRC_KEY_FILE": str(self.key_file),
            "RCLONE_CONFIG_SRC_KNOWN_HOSTS_FILE": str(self.known_hosts),
            "RCLONE_CONFIG_DST_TYPE": "s3",
            "RCLONE_CONFIG_DST_PROVIDER": "Other",
            "RCLONE_CONFIG_DST_ENDPOINT": self.endpoint,
            "RCLONE_CONFIG_DST_ACCESS_KEY_ID": "testing",
            "RCLONE_CONFIG_DST_SECRET_ACCESS_KEY": "testing",
            "RCLONE_CONFIG_DST_REGION": "us-east-1",
            "RCLONE_CONFIG_DST_FORCE_PATH_STYLE": "true",
        }
        subprocess.run(
            ["rclone", "copy", f"src:{src}", f"dst:{dst}"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def asyncssh_read(self, size: int, read_size: int) -> None:
        """Read the large file with asyncssh as the engine does, discarding the bytes."""
        async with (
            asyncssh.connect(
                self.srv.host,
                self.srv.port,
                username="root",
                client_keys=[self.client_key],
                known_hosts=str(self.known_hosts),
                encryption_algs=["aes128-gcm@openssh.com"],
                agent_path=None,
                config=None,
            ) as conn,
            conn.start_sftp_client() as sftp,
            sftp.open(
                str(self.large), "rb", block_size=SFTP_BLOCK_SIZE, max_requests=SFTP_MAX_REQUESTS
            ) as remote,
        ):
            offset = 0
            while offset < size:
                offset += len(await remote.read(read_size, offset))


def _s3_side(endpoint: str) -> tuple[AwsTarget, Any]:
    """The landing bucket and the ledger table in moto; the S3 client every path uses."""
    aws = AwsTarget(region="us-east-1", endpoint_url=endpoint)
    # the engine's S3 client settings, so every path does the same S3 work per byte
    s3 = aws.client("s3", config=STREAMING_S3_CONFIG)
    s3.create_bucket(Bucket=BUCKET)
    create_pk_sk_table(aws.client("dynamodb"), LEDGER)
    return aws, s3


def _write_files(srv: SftpServer, args: argparse.Namespace) -> tuple[Path, Path]:
    """The large file and the directory of small ones, in the sshd's root."""
    large = srv.root / "large.bin"
    with large.open("wb") as fh:
        for _ in range(args.large_mib):
            fh.write(os.urandom(MIB))
    small_dir = srv.root / "small"
    small_dir.mkdir()
    for i in range(args.small_count):
        (small_dir / f"f{i:04d}.csv").write_bytes(os.urandom(args.small_bytes))
    return large, small_dir


@contextmanager
def open_rig(args: argparse.Namespace, work: Path, endpoint: str, moto_pid: int) -> Iterator[Rig]:
    """Set everything up; on the way out, close the engine and stop the sshd."""
    aws, s3 = _s3_side(endpoint)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = work / "id_bench"
    key_file.write_bytes(client_key.export_private_key())
    key_file.chmod(0o600)
    srv = start_sshd(work / "sshd", client_key)
    known_hosts = work / "known_hosts"
    known_hosts.write_text(f"[{srv.host}]:{srv.port} {srv.public_keys()[0]}\n")
    large, small_dir = _write_files(srv, args)
    connector = create_connector(
        aws.client("transfer"),
        aws.client("secretsmanager"),
        url=srv.url,
        username="root",
        private_key=client_key.export_private_key().decode(),
        trusted_host_keys=srv.public_keys(),
        access_role="arn:aws:iam::123456789012:role/b",
        max_connections=args.max_connections,
    )
    service = build_builtin_service(
        aws,
        LEDGER,
        files_per_connection=args.files_per_connection,
        engine_options={
            "part_size": args.part_mib * MIB,
            "parts_in_flight": args.parts_in_flight,
        },
    )
    try:
        yield Rig(
            work=work,
            endpoint=endpoint,
            moto_pid=moto_pid,
            aws=aws,
            s3=s3,
            srv=srv,
            client_key=client_key,
            key_file=key_file,
            known_hosts=known_hosts,
            large=large,
            small_dir=small_dir,
            connector=connector,
            service=service,
        )
    finally:
        service.close()
        srv.stop()
