"""Helpers for the gateway tests: the gateway on a background loop, real clients, log reading."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
from support_aws import wait_for

from ingest.adapters.aws import AwsTarget
from ingest_local.gateway import Gateway, GatewayConfig, start_gateway

REGION = "us-east-1"
BUCKET = "gw-test-landing-123456789012"
LEDGER = "gw-test-ledger"
USER_ROLE = "arn:aws:iam::123456789012:role/gw-test-TransferUserRole"


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
        """Ship the logs and events queued so far (a stopped gateway shipped them at close)."""
        if self._thread.is_alive():
            self.call(self.gateway.services.audit.flush())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self.call(self.gateway.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


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
    identities: list[Path] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run OpenSSH ``sftp -b`` with strict host-key checking against the gateway; the
    client offers ``identities`` (default: the partner's key) in that order."""
    batch_file = tmp_path / "batch.txt"
    batch_file.write_text(batch)
    cmd = [
        "sftp",
        "-b",
        str(batch_file),
        "-P",
        str(gw.port),
        *(arg for key in identities or [partner.private_path] for arg in ("-i", str(key))),
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


def asyncssh_connect(gw: GatewayThread, partner: PartnerKeys, tmp_path: Path) -> Any:
    """An asyncssh connection (an async context manager) that pins the gateway's host keys."""
    return asyncssh.connect(
        "127.0.0.1",
        gw.port,
        username=partner.name,
        client_keys=[partner.key],
        known_hosts=asyncssh.import_known_hosts(known_hosts_file(gw, tmp_path).read_text()),
    )


class ClosingSFTPClient(paramiko.SFTPClient):
    """paramiko's SFTPClient whose close() also ends the SSH connection."""

    def close(self) -> None:
        transport = self.get_channel().get_transport()
        super().close()
        transport.close()


def paramiko_sftp(gw: GatewayThread, partner: PartnerKeys) -> paramiko.SFTPClient:
    """A paramiko SFTP client that verifies the gateway's host key before authenticating."""
    transport = paramiko.Transport(("127.0.0.1", gw.port))
    ed25519 = next(k for k in gw.gateway.host_keys if k.get_algorithm() == "ssh-ed25519")
    expected = paramiko.Ed25519Key(data=ed25519.public_data)
    try:
        transport.connect(hostkey=expected, username=partner.name, pkey=partner.paramiko_key())
    except BaseException:
        transport.close()  # a refused login ends its connection, as a real client's does
        raise
    client = ClosingSFTPClient.from_transport(transport)
    assert client is not None
    return client


UPLOAD_EVENTS = ("SFTP Server File Upload Completed", "SFTP Server File Upload Failed")
RENAME_EVENTS = ("SFTP Server File Rename Completed", "SFTP Server File Rename Failed")


def transfer_events(
    world: AwsWorld, detail_types: tuple[str, ...] = UPLOAD_EVENTS
) -> Callable[[], list[dict[str, Any]]]:
    """Route this server's Transfer events of ``detail_types`` (as the template's rule does)
    to an SQS queue through EventBridge, and return a function that reads them back (every
    event delivered so far, each call)."""
    sqs = world.client("sqs")
    events = world.client("events")
    name = f"transfer-{world.server_id}-{zlib.crc32('|'.join(detail_types).encode()):08x}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=name,
        EventPattern=json.dumps(
            {
                "source": ["aws.transfer"],
                "detail-type": list(detail_types),
                "detail": {"server-id": [world.server_id]},
            }
        ),
    )
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])

    got: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        while True:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            if not msgs:
                return list(got)
            for m in msgs:
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    return read


def log_entries(world: AwsWorld, server_id: str | None = None) -> list[dict[str, Any]]:
    """Every structured log entry the gateway wrote to /aws/transfer/<server-id>."""
    logs = world.client("logs")
    group = f"/aws/transfer/{server_id or world.server_id}"
    entries: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        entries += [json.loads(e["message"]) for e in page["events"]]
    return entries


#: Every detail field of the gateway's (and Transfer's) SFTP Server File Upload Failed event.
UPLOAD_FAILED_FIELDS = frozenset(
    {
        "status-code",
        "failure-code",
        "failure-message",
        "protocol",
        "bytes",
        "file-path",
        "server-id",
        "username",
        "session-id",
        "client-ip",
        "start-timestamp",
        "end-timestamp",
    }
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def wait_for_upload_failed(
    gw: GatewayThread,
    read_events: Callable[[], list[dict[str, Any]]],
    world: AwsWorld,
    key: str,
    *,
    bucket: str | None = None,
    timeout: float = 30,
) -> dict[str, Any]:
    """The one ``SFTP Server File Upload Failed`` event of ``key`` (read through
    :func:`transfer_events`), checked against Transfer's shape; returns its detail."""
    path = f"/{bucket or world.bucket}/{key}"

    def probe() -> list[dict[str, Any]]:
        gw.flush()
        return [e for e in read_events() if e["detail"].get("file-path") == path]

    found = wait_for(probe, timeout=timeout, what=f"the Upload Failed event of {path}")
    assert len(found) == 1, found
    event = found[0]
    assert event["source"] == "aws.transfer"
    assert event["detail-type"] == "SFTP Server File Upload Failed"
    assert event["resources"] == [
        f"arn:aws:transfer:{REGION}:123456789012:server/{world.server_id}"
    ]
    detail: dict[str, Any] = event["detail"]
    assert set(detail) == UPLOAD_FAILED_FIELDS, sorted(detail)
    assert (detail["status-code"], detail["failure-code"]) == ("FAILED", "PARTIAL_UPLOAD")
    assert detail["failure-message"]
    assert (detail["protocol"], detail["server-id"]) == ("SFTP", world.server_id)
    assert detail["username"] == key.split("/")[1]  # inbound/<partner>/...
    assert detail["client-ip"] == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{16}", detail["session-id"])
    assert TIMESTAMP.fullmatch(detail["start-timestamp"])
    assert TIMESTAMP.fullmatch(detail["end-timestamp"])
    assert detail["start-timestamp"] <= detail["end-timestamp"]
    assert isinstance(detail["bytes"], int)
    return detail


def ledger_items_of(world: AwsWorld, key: str) -> list[dict[str, Any]]:
    """Every item of the ledger table that names ``key`` anywhere."""
    items = []
    for page in (
        world.client("dynamodb").get_paginator("scan").paginate(TableName=world.ledger_table)
    ):
        items += [i for i in page.get("Items", []) if key in json.dumps(i)]
    return items
