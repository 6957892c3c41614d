"""A 200 MB upload through the gateway running in its own process: memory stays bounded.

RSS of the gateway process is sampled from /proc every 20 ms while OpenSSH ``sftp``
uploads; the peak growth over the idle baseline must stay within the design bound
(parts in flight + the part being filled + the out-of-order window, plus interpreter
overhead) — far below the file size, which proves nothing is buffered whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest
from gateway_kit import AwsWorld, PartnerKeys

from ingest_local.gateway import Limits

MIB = 1024 * 1024
SIZE = 200 * 1000 * 1000
RSS_LIMIT = 128 * MIB


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def gateway_process(world: AwsWorld, tmp_path: Path) -> Iterator[dict[str, object]]:
    env = {**os.environ}
    env.pop("AWS_CA_BUNDLE", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest_local.gateway",
            "--endpoint-url",
            str(world.aws.endpoint_url),
            "--bucket",
            world.bucket,
            "--server-id",
            world.server_id,
            "--state-dir",
            str(tmp_path / "gw-state"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    yield {**info, "state": tmp_path / "gw-state"}
    proc.terminate()
    proc.wait(30)


class PeakRss:
    """A process's RSS, sampled every 20 ms on a thread while in the ``with`` block: the
    ``baseline`` when made, and the ``peak``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = rss(pid)
        self.peak = self.baseline
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._sampler.join()


def write_random(path: Path, size: int) -> str:
    """``size`` bytes of one random MiB repeated, written to ``path``; their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        block = os.urandom(MIB)
        written = 0
        while written < size:
            piece = block[: min(MIB, size - written)]
            fh.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def gateway_known_hosts(path: Path, port: int, state: Path) -> Path:
    """A known_hosts file trusting the gateway's two host keys (from its state dir)."""
    path.write_text(
        "".join(
            f"[127.0.0.1]:{port} {(state / f'{n}.pub').read_text().strip()}\n"
            for n in ("ssh_host_ed25519_key", "ssh_host_rsa_key")
        )
    )
    return path


def openssh_put(
    port: int, partner: PartnerKeys, known: Path, src: Path, dst: str
) -> subprocess.CompletedProcess[str]:
    """OpenSSH ``sftp -b -`` ``put src dst`` as the partner, host key checked."""
    return subprocess.run(
        [
            "sftp",
            "-b",
            "-",
            "-P",
            str(port),
            "-i",
            str(partner.private_path),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            f"{partner.name}@127.0.0.1",
        ],
        input=f"put {src} {dst}\n",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def s3_sha256(world: AwsWorld, key: str) -> str:
    """The SHA-256 of an object in the landing bucket, read 8 MiB at a time."""
    got = hashlib.sha256()
    body = world.client("s3").get_object(Bucket=world.bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(8 * MIB), b""):
        got.update(chunk)
    return got.hexdigest()


@pytest.mark.slow
def test_200mb_upload_with_bounded_gateway_memory(
    gateway_process: dict[str, object],
    make_partner: Callable[..., PartnerKeys],
    world: AwsWorld,
    tmp_path: Path,
) -> None:
    partner = make_partner("bulk")
    src = tmp_path / "bulk.csv"
    digest = write_random(src, SIZE)
    port = int(str(gateway_process["port"]))
    state = Path(str(gateway_process["state"]))
    known = gateway_known_hosts(tmp_path / "known_hosts", port, state)
    pid = int(str(gateway_process["pid"]))
    time.sleep(0.5)
    with PeakRss(pid) as sampled:
        proc = openssh_put(port, partner, known, src, "bulk.csv")
    assert proc.returncode == 0, proc.stderr
    baseline, peak = sampled.baseline, sampled.peak
    growth = peak - baseline
    print(
        f"gateway RSS: baseline {baseline / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB, "
        f"growth {growth / MIB:.1f} MiB for a {SIZE / MIB:.0f} MiB upload"
    )
    assert growth <= RSS_LIMIT

    assert s3_sha256(world, "inbound/bulk/bulk.csv") == digest


@pytest.mark.slow
def test_many_open_handles_cost_no_buffer_memory(
    gateway_process: dict[str, object],
    make_partner: Callable[..., PartnerKeys],
) -> None:
    """A session that opens files up to the handle cap and writes nothing: the gateway
    process does not grow by a part buffer per handle (it grew by 8 MiB per handle before),
    and the handle past the cap is refused with a clear message."""
    partner = make_partner("idle")
    port = int(str(gateway_process["port"]))
    pid = int(str(gateway_process["pid"]))
    transport = paramiko.Transport(("127.0.0.1", port))
    transport.connect(username=partner.name, pkey=partner.paramiko_key())
    client = paramiko.SFTPClient.from_transport(transport)
    assert client is not None
    try:
        client.listdir("/")
        baseline = rss(pid)
        cap = Limits().max_handles_per_session
        handles = [client.open(f"f{i}.csv", "wb") for i in range(cap)]
        with pytest.raises(OSError, match="too many open files"):
            client.open("one-too-many.csv", "wb")
        growth = rss(pid) - baseline
        print(f"gateway RSS growth with {cap} open write handles: {growth / MIB:.1f} MiB")
        assert growth < 4 * MIB  # 8 MiB per handle before; the part buffers come at a write
        for fh in handles:
            fh.close()
    finally:
        transport.close()
