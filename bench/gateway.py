"""Benchmark: a 256 MiB upload with OpenSSH ``sftp`` through the gateway into moto S3.

Side by side in one run, against the same moto server (its own process):

* **substrate**: boto3 ``upload_file`` of the same file straight to moto (the limit the
  gateway can at best reach, since it writes to the same S3);
* **gateway**: OpenSSH ``sftp -b`` → the gateway (its own process) → moto, with the gateway's
  RSS sampled every 20 ms during the upload;
* **sshd**: OpenSSH ``sftp`` → Debian's ``/usr/sbin/sshd`` (internal-sftp) → local disk
  (the SSH limit);
* **rclone**: OpenSSH ``sftp`` → ``rclone serve sftp`` over the same moto bucket.

Prints MB/s, ratios to the substrate, and the gateway's RSS growth.
Usage: ``python bench/gateway.py [--size-mib 256] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig

from ingest.local.gateway import Limits

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
BUCKET = "bench-landing-123456789012"
LEDGER = "bench-ledger"
ROLE = "arn:aws:iam::123456789012:role/bench-TransferUserRole"
#: every SSH run uses the same cipher so the comparison is about the servers, not ciphers
CIPHER = "aes128-gcm@openssh.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class RssSampler:
    """Samples a process's RSS in a thread; reports the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = rss_bytes(pid)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sftp_put(port: int, user: str, key: Path, known_hosts: Path, src: Path, *, dst: str) -> None:
    batch = f"put {src} {dst}\n"
    proc = subprocess.run(
        [
            "sftp",
            "-q",
            "-b",
            "-",
            "-P",
            str(port),
            "-i",
            str(key),
            "-o",
            f"Ciphers={CIPHER}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            f"{user}@127.0.0.1",
        ],
        input=batch,
        text=True,
        check=False,
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sftp to port {port} failed: {proc.stderr.strip()}")


def known_hosts_for(port: int, pubkeys: list[str], path: Path) -> Path:
    path.write_text("".join(f"[127.0.0.1]:{port} {k.strip()}\n" for k in pubkeys))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-rclone", action="store_true")
    parser.add_argument("--parts-in-flight", type=int, default=Limits.parts_in_flight)
    args = parser.parse_args()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        os.environ[name] = value
    os.environ.pop("AWS_CA_BUNDLE", None)
    work = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    procs: list[subprocess.Popen[str]] = []
    try:
        return run(args, work, procs)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if (work / "rclone.log").exists() and os.environ.get("BENCH_SHOW_RCLONE_LOG"):
            print((work / "rclone.log").read_text()[-3000:])
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path, procs: list[subprocess.Popen[str]]) -> int:
    import asyncssh

    from ingest.local.partners import add_partner

    size = args.size_mib * 1024 * 1024
    src = work / "payload.bin"
    with src.open("wb") as fh:
        chunk = os.urandom(1024 * 1024)
        for _ in range(args.size_mib):
            fh.write(chunk)

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
    moto_pid = procs[-1].pid
    endpoint = f"http://127.0.0.1:{moto_port}"
    from ingest.local.gateway import S3_CONFIG

    # the same client settings the gateway uses, so both sides do the same work per byte
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, config=S3_CONFIG)
    s3.create_bucket(Bucket=BUCKET)
    # versioned like the template's landing bucket (rclone also needs real version ids:
    # moto answers its HEAD ?versionId=null on an unversioned bucket with 400)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    ddb.create_table(
        TableName=LEDGER,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    transfer = boto3.client("transfer", endpoint_url=endpoint, region_name=REGION)
    server_id = transfer.create_server(Domain="S3", Protocols=["SFTP"])["ServerId"]

    user_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = work / "id_ed25519"
    user_key.write_private_key(str(key_path))
    key_path.chmod(0o600)
    pub = user_key.export_public_key("openssh").decode()
    add_partner(transfer, server_id, BUCKET, "bench", pub, role=ROLE, state_dir=work / "state")

    gw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingest.local.gateway",
            "--endpoint-url",
            endpoint,
            "--bucket",
            BUCKET,
            "--server-id",
            server_id,
            "--ledger-table",
            LEDGER,
            "--state-dir",
            str(work / "state"),
            "--parts-in-flight",
            str(args.parts_in_flight),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    procs.append(gw)
    assert gw.stdout is not None
    info = json.loads(gw.stdout.readline())
    gw_port = info["port"]
    host_pubs = [
        (work / "state" / f"{n}.pub").read_text()
        for n in ("ssh_host_ed25519_key", "ssh_host_rsa_key")
    ]
    gw_known = known_hosts_for(gw_port, host_pubs, work / "known_gw")

    results: dict[str, list[float]] = {"substrate": [], "gateway": [], "sshd": [], "rclone": []}
    rss_growth: list[int] = []
    cpu_used: dict[str, list[float]] = {"gateway": [], "moto": []}
    config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads

    sshd_port, sshd_known = start_sshd(work, pub, procs)
    rclone_port = None if args.skip_rclone else start_rclone(work, endpoint, pub, procs)
    rclone_known = None
    if rclone_port is not None:
        rclone_known = known_hosts_for(
            rclone_port, [(work / "rclone_host_key.pub").read_text()], work / "known_rclone"
        )

    for run_no in range(args.runs):
        name = f"run{run_no}.bin"
        results["substrate"].append(
            timed(partial(s3.upload_file, str(src), BUCKET, f"substrate/{name}", Config=config))
        )
        cpu_before = cpu_seconds(info["pid"]), cpu_seconds(moto_pid)
        with RssSampler(info["pid"]) as sampler:
            results["gateway"].append(
                timed(partial(sftp_put, gw_port, "bench", key_path, gw_known, src, dst=name))
            )
        cpu_used["gateway"].append(cpu_seconds(info["pid"]) - cpu_before[0])
        cpu_used["moto"].append(cpu_seconds(moto_pid) - cpu_before[1])
        rss_growth.append(sampler.peak - sampler.baseline)
        head = s3.head_object(Bucket=BUCKET, Key=f"inbound/bench/{name}")
        assert head["ContentLength"] == size, "the gateway stored the whole file"
        disk = str(work / "sshd-out.bin")
        results["sshd"].append(
            timed(partial(sftp_put, sshd_port, "root", key_path, sshd_known, src, dst=disk))
        )
        if rclone_port is not None and rclone_known is not None:
            results["rclone"].append(
                timed(
                    partial(sftp_put, rclone_port, "bench", key_path, rclone_known, src, dst=name)
                )
            )
            head = s3.head_object(Bucket=BUCKET, Key=f"rclone/{name}")
            assert head["ContentLength"] == size

    report(results, rss_growth, size, args)
    gateway_cpu = statistics.median(cpu_used["gateway"])
    moto_cpu = statistics.median(cpu_used["moto"])
    print(
        f"CPU seconds during the gateway upload (median): gateway process {gateway_cpu:.1f}, "
        f"moto {moto_cpu:.1f}"
    )
    return 0


def start_sshd(work: Path, pub: str, procs: list[subprocess.Popen[str]]) -> tuple[int, Path]:
    host_key = work / "sshd_host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    auth = work / "authorized_keys"
    auth.write_text(pub)
    auth.chmod(0o600)
    port = free_port()
    cfg = work / "sshd_config"
    cfg.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {auth}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"PidFile {work / 'sshd.pid'}\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    procs.append(
        subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    )
    wait_port(port)
    known = known_hosts_for(port, [Path(f"{host_key}.pub").read_text()], work / "known_sshd")
    return port, known


def start_rclone(
    work: Path, endpoint: str, pub: str, procs: list[subprocess.Popen[str]]
) -> int | None:
    if shutil.which("rclone") is None:
        print("rclone: not installed, skipped")
        return None
    host_key = work / "rclone_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    auth = work / "rclone_authorized_keys"
    auth.write_text(pub)
    port = free_port()
    env = {**os.environ, "RCLONE_CONFIG": str(work / "rclone.conf")}
    (work / "rclone.conf").write_text(
        "[moto]\ntype = s3\nprovider = Other\naccess_key_id = testing\n"
        f"secret_access_key = testing\nendpoint = {endpoint}\nregion = {REGION}\n"
        "force_path_style = true\n"
    )
    procs.append(
        subprocess.Popen(
            [
                "rclone",
                "serve",
                "sftp",
                f"moto:{BUCKET}/rclone",
                "--addr",
                f"127.0.0.1:{port}",
                "--user",
                "bench",
                "--authorized-keys",
                str(auth),
                "--key",
                str(host_key),
                "--vfs-cache-mode",
                "off",
                "--s3-upload-concurrency",
                "10",
                "--s3-chunk-size",
                "8M",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(work / "rclone.log").open("w"),
            text=True,
            env=env,
        )
    )
    wait_port(port)
    return port


def report(
    results: dict[str, list[float]], rss: list[int], size: int, args: argparse.Namespace
) -> None:
    mib = size / (1024 * 1024)
    print(
        f"\n{mib:.0f} MiB upload, {args.runs} runs each, median of runs "
        f"(SSH cipher {CIPHER} for every SSH run)\n"
    )
    substrate = mib / statistics.median(results["substrate"])
    print(f"{'path':<44}{'MiB/s':>8}{'x substrate':>13}")
    rows = [
        ("substrate: boto3 upload_file -> moto S3", "substrate"),
        ("gateway: OpenSSH sftp -> gateway -> moto S3", "gateway"),
        ("SSH limit: OpenSSH sftp -> sshd -> disk", "sshd"),
        ("peer: OpenSSH sftp -> rclone serve sftp -> S3", "rclone"),
    ]
    for label, name in rows:
        if not results[name]:
            print(f"{label:<44}{'n/a':>8}")
            continue
        rate = mib / statistics.median(results[name])
        print(f"{label:<44}{rate:>8.1f}{rate / substrate:>13.2f}")
    growth = max(rss) / (1024 * 1024)
    print(
        f"\ngateway RSS growth during upload (peak over baseline, worst run): {growth:.1f} MiB"
        f" (target <= 128 MiB)"
    )
    gw_ratio = (mib / statistics.median(results["gateway"])) / substrate
    print(
        f"target gateway >= 0.90 x substrate: {'met' if gw_ratio >= 0.9 else 'NOT met'}"
        f" ({gw_ratio:.2f})"
    )


if __name__ == "__main__":
    sys.exit(main())
