"""Driving a real ``ingest up`` subprocess from tests (used by ``tests/e2e/conftest.py``).

A :class:`RunningStack` offers ``client(service)``, ``ingest(*args)`` (the CLI against this
stack), ``sftp_batch(commands)`` (OpenSSH ``sftp -b`` with strict host key checking),
``status()`` / ``wait_for_file(key)`` and ``stop()``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import boto3
import paramiko
from support_aws import wait_for

from ingest.adapters.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {
    "PROCESSED",
    "PROCESSED_WITH_REJECTS",
    "FAILED",
    "UNMATCHED",
    "PARTIAL",
    "IGNORED",
    "EXPANDED",
    "DECRYPTED",
}
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def cli_env() -> dict[str, str]:
    """The environment for ``ingest`` subprocesses: fake credentials, no CA bundle."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "AWS_PROFILE")}
    env.pop("INGEST_STATE_DIR", None)
    env.update(FAKE_AWS)
    return env


@dataclass
class RunningStack:
    """An ``ingest up`` process and what it wrote to its state dir."""

    state_dir: Path
    process: subprocess.Popen[bytes]
    endpoints: dict[str, Any] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, str]:
        return dict(self.endpoints["resources"])

    @property
    def sftp_port(self) -> int:
        return int(self.endpoints["sftp"]["port"])

    @property
    def demo_key(self) -> Path:
        return self.state_dir / "demo-partner" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    def client(self, service: str) -> Any:
        """A boto3 client for the stack's moto."""
        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoints["aws_endpoint_url"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def ingest(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ingest ARGS --state-dir <this stack>`` and return the finished process."""
        proc = subprocess.run(
            [sys.executable, "-m", "ingest", *args, "--state-dir", str(self.state_dir)],
            cwd=REPO,
            check=False,
            env=cli_env() if env is None else env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"ingest {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def sftp_batch(
        self,
        commands: list[str],
        *,
        user: str = "demo",
        key: Path | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run OpenSSH ``sftp -b`` with the commands; the host key must match known_hosts."""
        if shutil.which("sftp") is None:
            raise AssertionError("OpenSSH sftp is not installed (.ci/run installs openssh-client)")
        batch = self.state_dir / f"batch-{time.monotonic_ns()}.txt"
        batch.write_text("\n".join(commands) + "\n")
        proc = subprocess.run(
            [
                "sftp",
                "-b", str(batch),
                "-P", str(self.sftp_port),
                "-i", str(key or self.demo_key),
                "-o", "IdentitiesOnly=yes",
                "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "BatchMode=yes",
                f"{user}@{self.endpoints['sftp']['host']}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"sftp exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    @contextmanager
    def paramiko_sftp(self, user: str, key: Path) -> Iterator[Any]:
        """A paramiko SFTP session that checks the gateway's ed25519 host key against
        known_hosts; the connection is closed (abruptly, for open files) at the end."""
        host_keys = [
            asyncssh.import_public_key(line.split(maxsplit=1)[1])
            for line in self.known_hosts.read_text().splitlines()
            if line.strip()
        ]
        ed25519 = next(k for k in host_keys if k.get_algorithm() == "ssh-ed25519")
        transport = paramiko.Transport((self.endpoints["sftp"]["host"], self.sftp_port))
        transport.connect(
            hostkey=paramiko.Ed25519Key(data=ed25519.public_data),
            username=user,
            pkey=paramiko.Ed25519Key.from_private_key_file(str(key)),
        )
        try:
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            yield sftp
        finally:
            transport.close()

    def status(self) -> list[dict[str, Any]]:
        """``ingest status --json``."""
        return list(json.loads(self.ingest("status", "--json").stdout))

    def wait_for_file(
        self, key: str, *, etag: str | None = None, timeout: float = 120
    ) -> dict[str, Any]:
        """The file's ``ingest status --json`` entry once the ledger shows it terminal (that
        version of it, given its ``etag``)."""
        ledger = Ledger(self.client("dynamodb"), self.resources["ledger_table"])
        # Poll the ledger directly (cheap), then read the answer through the CLI contract.
        wait_for(
            lambda: (
                (e := ledger.get_file(key)) is not None
                and e.status in TERMINAL
                and etag in (None, e.etag)
            ),
            timeout=timeout,
            what=f"{key} to be terminal",
        )
        return next(f for f in self.status() if f["key"] == key)

    def stop(self, timeout: float = 60, sig: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM (as a supervisor would) or SIGINT (Ctrl-C); returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"ingest up did not stop within {timeout}s of {sig!r}"
                ) from None
        return int(self.process.returncode)


def launch(state_dir: Path, *args: str, timeout: float = 180) -> RunningStack:
    """Start ``ingest up --state-dir state_dir ARGS`` and wait for its endpoints.json."""
    state_dir.mkdir(parents=True, exist_ok=True)
    endpoints = state_dir / "endpoints.json"
    endpoints.unlink(missing_ok=True)
    log = (state_dir / "ingest-up.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "up", "--state-dir", str(state_dir), *args],
        cwd=REPO,
        env=cli_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    stack = RunningStack(state_dir, process)

    def ready() -> bool:
        if process.poll() is not None:
            output = (state_dir / "ingest-up.log").read_text()
            raise AssertionError(f"ingest up exited {process.returncode}:\n{output}")
        return endpoints.exists()

    try:
        wait_for(ready, timeout=timeout, what="ingest up to write endpoints.json")
    except AssertionError:
        stack.stop()
        raise
    stack.endpoints = json.loads(endpoints.read_text())
    return stack
