"""Real SFTP servers on loopback (OpenSSH sshd and asyncssh) and moto, for connector tests."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from moto import mock_aws
from support_aws import fake_aws_env, wait_for

from connectors.config import create_connector
from connectors.service import BuiltinConnectorService
from connectors.wiring import build_builtin_service
from ingest.adapters.aws import AwsTarget
from ingest_local.moto_fidelity import serialize_dynamodb_requests
from ingest_local.tables import create_pk_sk_table

SSHD = "/usr/sbin/sshd"
BUCKET = "landing-bucket"
LEDGER = "ledger"
REGION = "us-east-1"
ACCESS_ROLE = "arn:aws:iam::123456789012:role/connector-access"


@dataclass
class Aws:
    target: AwsTarget
    s3: Any
    ddb: Any
    logs: Any
    events: Any
    transfer: Any
    secrets: Any


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    fake_aws_env(monkeypatch, REGION)
    serialize_dynamodb_requests()
    with mock_aws():
        target = AwsTarget(region=REGION)
        s3 = target.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        ddb = target.client("dynamodb")
        create_pk_sk_table(ddb, LEDGER)
        yield Aws(
            target=target,
            s3=s3,
            ddb=ddb,
            logs=target.client("logs"),
            events=target.client("events"),
            transfer=target.client("transfer"),
            secrets=target.client("secretsmanager"),
        )


@pytest.fixture
def client_key(tmp_path: Path) -> asyncssh.SSHKey:
    """The connector's login key, generated for this test."""
    return asyncssh.generate_private_key("ssh-ed25519")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_for(listening, timeout=timeout, what=f"sshd to listen on {port}")


@dataclass
class SftpServer:
    """A running server: where it is, its host keys (public), and the directory it serves."""

    host: str
    port: int
    host_keys: list[asyncssh.SSHKey]
    root: Path
    kind: str
    #: server-side path of a file under ``root`` (asyncssh serves ``root`` as ``/``).
    path_of: Callable[[str], str] = field(default=lambda rel: rel)
    stop: Callable[[], None] = field(default=lambda: None)
    pid: int = 0

    @property
    def url(self) -> str:
        return f"sftp://{self.host}:{self.port}"

    def public_keys(self) -> list[str]:
        # "type base64" without the comment ssh-keygen adds (what TestConnection reports)
        return [" ".join(k.export_public_key().decode().split()[:2]) for k in self.host_keys]


def _host_keys(workdir: Path, key_types: tuple[str, ...]) -> list[tuple[Path, asyncssh.SSHKey]]:
    """A new host key of each type, by ssh-keygen: its file and its public key."""
    keys = []
    for kind in key_types:
        path = workdir / f"ssh_host_{kind}_key"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
        keys.append((path, asyncssh.read_public_key(str(path) + ".pub")))
    return keys


def _sshd_config(workdir: Path, port: int, host_key_files: list[Path], auth: Path) -> Path:
    """An sshd_config a non-root user can run: public-key logins only, internal-sftp."""
    cfg = workdir / "sshd_config"
    cfg.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                *(f"HostKey {path}" for path in host_key_files),
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {auth}",
                "StrictModes no",
                "PermitRootLogin yes",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                "MaxStartups 50",
                "MaxSessions 50",
                "",
            ]
        )
    )
    return cfg


def _stopper(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()

    return stop


def start_sshd(
    workdir: Path, client_key: asyncssh.SSHKey, *, key_types: tuple[str, ...] = ("ed25519",)
) -> SftpServer:
    """Debian's OpenSSH sshd as a subprocess with a generated config (non-root-safe options)."""
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation dir (as root)
    host_keys = _host_keys(workdir, key_types)
    auth = workdir / "authorized_keys"
    auth.write_text(client_key.export_public_key().decode())
    root = workdir / "remote"
    root.mkdir()
    port = free_port()
    cfg = _sshd_config(workdir, port, [path for path, _ in host_keys], auth)
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(cfg), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_port(port, proc)
    return SftpServer(
        host="127.0.0.1",
        port=port,
        host_keys=[key for _, key in host_keys],
        root=root,
        kind="openssh",
        path_of=lambda rel: str(root / rel.lstrip("/")),
        stop=_stopper(proc),
        pid=proc.pid,
    )


class LoopThread:
    """An event loop on a thread, for servers that must outlive one test call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def start_asyncssh(
    workdir: Path,
    client_key: asyncssh.SSHKey,
    *,
    host_key: asyncssh.SSHKey | None = None,
    sftp_class: type[asyncssh.SFTPServer] = asyncssh.SFTPServer,
) -> SftpServer:
    """An asyncssh SFTP server on port 0 serving ``workdir/remote`` as ``/``."""
    root = workdir / "remote"
    root.mkdir(parents=True, exist_ok=True)
    key = host_key or asyncssh.generate_private_key("ssh-ed25519")
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    loop = LoopThread()

    async def listen() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[key],
            authorized_client_keys=authorized,
            sftp_factory=lambda chan: sftp_class(chan, chroot=str(root)),
            allow_scp=False,
        )

    server = loop.run(listen())

    def stop() -> None:
        async def close() -> None:
            server.close()
            await server.wait_closed()

        loop.run(close())
        loop.close()

    return SftpServer(
        host="127.0.0.1",
        port=server.get_port(),
        host_keys=[key.convert_to_public()],
        root=root,
        kind="asyncssh",
        path_of=lambda rel: "/" + rel.lstrip("/"),
        stop=stop,
    )


@pytest.fixture(params=["openssh", "asyncssh"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, client_key: asyncssh.SSHKey
) -> Iterator[SftpServer]:
    """Each test that takes ``server`` runs against both servers."""
    if request.param == "openssh":
        if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
            pytest.fail("OpenSSH sshd is required (apt-get install openssh-server)")
        srv = start_sshd(tmp_path / "sshd", client_key)
    else:
        srv = start_asyncssh(tmp_path / "asyncssh", client_key)
    yield srv
    srv.stop()


def make_connector(
    aws: Aws,
    srv: SftpServer,
    client_key: asyncssh.SSHKey,
    *,
    trusted: list[str] | None = None,
    max_connections: int = 2,
) -> str:
    return create_connector(
        aws.transfer,
        aws.secrets,
        url=srv.url,
        username="root",
        private_key=client_key.export_private_key().decode(),
        trusted_host_keys=trusted if trusted is not None else srv.public_keys(),
        access_role=ACCESS_ROLE,
        max_connections=max_connections,
    )


@pytest.fixture
def service(aws: Aws) -> Iterator[BuiltinConnectorService]:
    svc = build_builtin_service(
        aws.target,
        LEDGER,
        engine_options={"part_size": 5 * 1024 * 1024},
        endpoint_options={"connect_timeout": 5, "io_timeout": 10},
    )
    yield svc
    svc.close()


def capture_events(aws: Aws, detail_type_prefix: str) -> str:
    """Route our and AWS's connector events whose detail-type starts with the prefix to a
    new SQS queue (EventBridge → SQS in moto); returns the queue URL for :func:`drain`."""
    sqs = aws.target.client("sqs")
    name = "events-" + "".join(c if c.isalnum() else "-" for c in detail_type_prefix.strip())
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.events.put_rule(
        Name=name,
        EventPattern=json.dumps(
            {
                "source": ["aws.transfer", "sftp-ingest.connectors"],
                "detail-type": [{"prefix": detail_type_prefix}],
            }
        ),
    )
    aws.events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return str(queue_url)


def drain(aws: Aws, queue_url: str) -> list[dict[str, Any]]:
    """Every event delivered to the queue so far."""
    sqs = aws.target.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
