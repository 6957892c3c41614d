"""Fixtures for the gateway tests: a real moto server, real Transfer users, a real gateway.

The gateway runs on its own asyncio loop in a background thread, so tests can drive it
with blocking clients (OpenSSH ``sftp``, paramiko) from the test thread.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest
from moto.server import ThreadedMotoServer

from ingest.aws import AwsTarget
from ingest.local.gateway import Gateway, GatewayConfig, Limits, start_gateway
from ingest.local.partners import add_partner

REGION = "us-east-1"
BUCKET = "gw-test-landing-123456789012"
LEDGER = "gw-test-ledger"
USER_ROLE = "arn:aws:iam::123456789012:role/gw-test-TransferUserRole"


@pytest.fixture(scope="session", autouse=True)
def _aws_env() -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        mp.setenv(name, value)
    mp.delenv("AWS_CA_BUNDLE", raising=False)
    mp.delenv("AWS_PROFILE", raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def moto_endpoint(_aws_env: None) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class AwsWorld:
    """The moto resources one test uses (a fresh Transfer server per test)."""

    aws: AwsTarget
    bucket: str
    ledger_table: str
    server_id: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str) -> Any:
        if name not in self.clients:
            self.clients[name] = self.aws.client(name)
        return self.clients[name]


@pytest.fixture(scope="session")
def _base_resources(moto_endpoint: str) -> AwsTarget:
    aws = AwsTarget(region=REGION, endpoint_url=moto_endpoint)
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("dynamodb").create_table(
        TableName=LEDGER,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return aws


@pytest.fixture
def world(_base_resources: AwsTarget) -> AwsWorld:
    aws = _base_resources
    server_id = aws.client("transfer").create_server(
        Domain="S3", Protocols=["SFTP"], IdentityProviderType="SERVICE_MANAGED"
    )["ServerId"]
    return AwsWorld(aws, BUCKET, LEDGER, server_id)


class GatewayThread:
    """A gateway on its own event loop in a daemon thread."""

    def __init__(self, config: GatewayConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.gateway: Gateway = self.call(start_gateway(config))

    def call(self, coro: Any, timeout: float = 60) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    @property
    def port(self) -> int:
        return self.gateway.port

    def flush(self) -> None:
        self.call(self.gateway.services.audit.flush())

    def stop(self) -> None:
        self.call(self.gateway.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def host_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state dir for host keys across tests: generating RSA keys takes seconds."""
    return tmp_path_factory.mktemp("gateway-state")


@pytest.fixture
def start_gw(world: AwsWorld, host_key_dir: Path) -> Iterator[Callable[..., GatewayThread]]:
    started: list[GatewayThread] = []

    def start(limits: Limits | None = None, bucket: str | None = None) -> GatewayThread:
        config = GatewayConfig(
            aws=world.aws,
            bucket=bucket or world.bucket,
            server_id=world.server_id,
            ledger_table=world.ledger_table,
            state_dir=host_key_dir,
            limits=limits or Limits(),
        )
        gw = GatewayThread(config)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def gw(start_gw: Callable[..., GatewayThread]) -> GatewayThread:
    return start_gw()


@dataclass
class PartnerKeys:
    name: str
    private_path: Path
    public_line: str
    key: asyncssh.SSHKey

    def paramiko_key(self) -> paramiko.PKey:
        return paramiko.Ed25519Key.from_private_key(
            io.StringIO(self.key.export_private_key("openssh").decode())
        )


@pytest.fixture
def make_partner(world: AwsWorld, tmp_path: Path) -> Callable[[str], PartnerKeys]:
    def make(name: str, *, register: bool = True, bucket: str | None = None) -> PartnerKeys:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"{name}@test")
        path = tmp_path / f"{name}_ed25519"
        key.write_private_key(str(path))
        path.chmod(0o600)
        public = key.export_public_key("openssh").decode().strip()
        if register:
            add_partner(
                world.client("transfer"),
                world.server_id,
                bucket or world.bucket,
                name,
                public,
                role=USER_ROLE,
                state_dir=tmp_path / "state",
            )
        return PartnerKeys(name, path, public, key)

    return make


def known_hosts_file(gw: GatewayThread, tmp_path: Path) -> Path:
    """A known_hosts file made from the gateway's host keys, as a partner would pin them."""
    path = tmp_path / "known_hosts"
    lines = [
        f"[127.0.0.1]:{gw.port} {key.export_public_key('openssh').decode().strip()}"
        for key in gw.gateway.host_keys
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def openssh_sftp(
    gw: GatewayThread,
    partner: PartnerKeys,
    batch: str,
    tmp_path: Path,
    *,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run OpenSSH ``sftp -b`` with strict host-key checking against the gateway."""
    batch_file = tmp_path / "batch.txt"
    batch_file.write_text(batch)
    cmd = [
        "sftp",
        "-b",
        str(batch_file),
        "-P",
        str(gw.port),
        "-i",
        str(partner.private_path),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts_file(gw, tmp_path)}",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentityAgent=none",
        f"{partner.name}@127.0.0.1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"sftp failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def paramiko_sftp(gw: GatewayThread, partner: PartnerKeys) -> paramiko.SFTPClient:
    """A paramiko SFTP client that verifies the gateway's host key before authenticating."""
    transport = paramiko.Transport(("127.0.0.1", gw.port))
    ed25519 = next(k for k in gw.gateway.host_keys if k.get_algorithm() == "ssh-ed25519")
    expected = paramiko.Ed25519Key(data=ed25519.public_data)
    transport.connect(hostkey=expected, username=partner.name, pkey=partner.paramiko_key())
    client = paramiko.SFTPClient.from_transport(transport)
    assert client is not None
    return client


def log_entries(world: AwsWorld, server_id: str | None = None) -> list[dict[str, Any]]:
    """Every structured log entry the gateway wrote to /aws/transfer/<server-id>."""
    logs = world.client("logs")
    group = f"/aws/transfer/{server_id or world.server_id}"
    entries: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        entries += [json.loads(e["message"]) for e in page["events"]]
    return entries


def python() -> str:
    return sys.executable
