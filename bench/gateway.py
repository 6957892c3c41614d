"""Benchmark: a 256 MiB upload with OpenSSH ``sftp`` through the gateway into moto S3.

Side by side in one run, against the same moto server (its own process), each path
``--runs`` times in a rotated order:

* **substrate**: boto3 ``upload_file`` of the same file straight to moto, with the gateway's
  S3 client settings (the limit the gateway can at best reach, since it writes to the same S3);
* **gateway**: OpenSSH ``sftp -b`` → the gateway (its own process) → moto, with the gateway's
  RSS sampled every 20 ms during the upload;
* **sshd**: OpenSSH ``sftp`` → Debian's ``/usr/sbin/sshd`` (internal-sftp) → local disk
  (the SSH limit);
* **asyncssh alone**: OpenSSH ``sftp`` → an asyncssh SFTP server that discards the bytes
  (``bench/null_sftp.py``): what the SSH library costs before any S3 work;
* **rclone**: OpenSSH ``sftp`` → ``rclone serve sftp`` over the same moto bucket.

Prints MB/s (median and best) with ratios to the substrate, the gateway's RSS growth, the CPU
each path used, and the path's CPU floor on this machine (``bench/cpu_floor.py``).
Usage: ``python bench/gateway.py [--size-mib 256] [--runs 3] [--skip-rclone]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
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
from cpu_floor import cpu_floor, floor_line, serial_complete_seconds, tree_cpu
from sftp_servers import (
    CIPHER,
    free_port,
    known_hosts_for,
    sftp_put,
    start_json_child,
    start_rclone,
    start_sshd,
    wait_port,
)

from ingest.adapters.multipart import STREAMING_S3_CONFIG
from ingest_local.gateway import Limits

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
BUCKET = "bench-landing-123456789012"
LEDGER = "bench-ledger"
ROLE = "arn:aws:iam::123456789012:role/bench-TransferUserRole"


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


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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

    from ingest.adapters.partners import add_partner

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
    # the same client settings the gateway uses, so both sides do the same work per byte
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, config=STREAMING_S3_CONFIG)
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
    gw_port = info["port"]
    host_pubs = [
        (work / "state" / f"{n}.pub").read_text()
        for n in ("ssh_host_ed25519_key", "ssh_host_rsa_key")
    ]
    gw_known = known_hosts_for(gw_port, host_pubs, work / "known_gw")

    config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads, CRC32 per part
    sshd_port, sshd_known = start_sshd(work, pub, procs)
    rclone_port = (
        None
        if args.skip_rclone
        else start_rclone(
            work, pub, procs, endpoint=endpoint, region=REGION, remote=f"{BUCKET}/rclone"
        )
    )
    rclone_known = None
    if rclone_port is not None:
        rclone_known = known_hosts_for(
            rclone_port, [(work / "rclone_host_key.pub").read_text()], work / "known_rclone"
        )

    null_key = work / "null_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(null_key)], check=True)
    null_info = start_json_child(
        [sys.executable, str(ROOT / "bench" / "null_sftp.py"), str(null_key)], procs, ROOT
    )
    null_known = known_hosts_for(
        null_info["port"], [Path(f"{null_key}.pub").read_text()], work / "known_null"
    )
    null_cpu: list[float] = []

    def substrate(name: str) -> None:
        s3.upload_file(str(src), BUCKET, f"substrate/{name}", Config=config)

    def gateway(name: str) -> None:
        with RssSampler(info["pid"]) as sampler:
            sftp_put(gw_port, "bench", key_path, gw_known, src, dst=name)
        rss_growth.append(sampler.peak - sampler.baseline)
        head = s3.head_object(Bucket=BUCKET, Key=f"inbound/bench/{name}")
        assert head["ContentLength"] == size, "the gateway stored the whole file"

    def sshd(name: str) -> None:
        sftp_put(sshd_port, "root", key_path, sshd_known, src, dst=str(work / "sshd-out.bin"))

    def asyncssh_sink(name: str) -> None:
        before = tree_cpu(null_info["pid"])
        sftp_put(null_info["port"], "bench", key_path, null_known, src, dst=name)
        null_cpu.append(tree_cpu(null_info["pid"]) - before)

    def rclone(name: str) -> None:
        assert rclone_port is not None and rclone_known is not None
        sftp_put(rclone_port, "bench", key_path, rclone_known, src, dst=name)
        assert s3.head_object(Bucket=BUCKET, Key=f"rclone/{name}")["ContentLength"] == size

    cases: dict[str, Callable[[str], None]] = {
        "substrate": substrate,
        "gateway": gateway,
        "sshd": sshd,
        "asyncssh": asyncssh_sink,
    }
    if rclone_port is not None:
        cases["rclone"] = rclone
    results: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    rss_growth: list[int] = []
    cpu_gateway_process: list[float] = []
    names = list(cases)
    for run_no in range(args.runs):
        # rotated order, so no path always runs first (on a colder or quieter machine)
        for name in names[run_no % len(names) :] + names[: run_no % len(names)]:
            before, gw_before = path_cpu(info["pid"], moto_pid), tree_cpu(info["pid"])
            results[name].append(timed(partial(cases[name], f"run{run_no}.bin")))
            cpu[name].append(path_cpu(info["pid"], moto_pid) - before)
            if name == "gateway":
                cpu_gateway_process.append(tree_cpu(info["pid"]) - gw_before)

    serial = statistics.median(
        serial_complete_seconds(s3, BUCKET, f"complete-cost/{i}", size) for i in range(2)
    )
    report(results, rss_growth, size, args)
    gateway_cpu = statistics.median(cpu["gateway"])
    substrate_time = statistics.median(results["substrate"])
    print(
        f"CPU seconds per run (median; gateway path = OpenSSH client + gateway + moto): "
        f"gateway path {gateway_cpu:.1f}, substrate path {statistics.median(cpu['substrate']):.1f}"
    )
    print(floor_line("gateway", gateway_cpu, serial, substrate_time))
    own = statistics.median(cpu_gateway_process)
    # the gateway's own CPU that would still let the path's floor reach 0.9 x the substrate
    budget = own + (substrate_time / 0.9 - cpu_floor(gateway_cpu, serial)) * (os.cpu_count() or 1)
    sink = statistics.median(null_cpu)
    print(
        f"the gateway process used {own:.2f} CPU-s per upload; for a floor of 0.90 x it could "
        f"use at most {budget:.2f}; asyncssh alone (null sink) used {sink:.2f}"
    )
    return 0


def path_cpu(gateway_pid: int, moto_pid: int) -> float:
    """CPU seconds so far of the gateway, moto, and this process with its finished children
    (the ``sftp``/``ssh`` clients): everything that runs during one upload."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return client + tree_cpu(gateway_pid) + tree_cpu(moto_pid)


def report(
    results: dict[str, list[float]], rss: list[int], size: int, args: argparse.Namespace
) -> None:
    mib = size / (1024 * 1024)
    print(
        f"\n{mib:.0f} MiB upload, {args.runs} runs each in rotated order "
        f"(SSH cipher {CIPHER} for every SSH run)\n"
    )
    rows = [
        ("substrate: boto3 upload_file -> moto S3", "substrate"),
        ("gateway: OpenSSH sftp -> gateway -> moto S3", "gateway"),
        ("SSH limit: OpenSSH sftp -> sshd -> disk", "sshd"),
        ("asyncssh alone: OpenSSH sftp -> null sink", "asyncssh"),
        ("peer: OpenSSH sftp -> rclone serve sftp -> S3", "rclone"),
    ]
    substrate_median = mib / statistics.median(results["substrate"])
    substrate_best = mib / min(results["substrate"])
    print(f"{'path':<46}{'median MiB/s':>13}{'x':>6}{'best MiB/s':>12}{'x':>6}")
    for label, name in rows:
        if not results.get(name):
            print(f"{label:<46}{'n/a':>13}")
            continue
        median = mib / statistics.median(results[name])
        best = mib / min(results[name])
        print(
            f"{label:<46}{median:>13.1f}{median / substrate_median:>6.2f}"
            f"{best:>12.1f}{best / substrate_best:>6.2f}"
        )
    growth = max(rss) / (1024 * 1024)
    print(
        f"\ngateway RSS growth during upload (peak over baseline, worst run): {growth:.1f} MiB"
        f" (target <= 128 MiB)"
    )
    ratio = statistics.median(results["substrate"]) / statistics.median(results["gateway"])
    print(
        f"target gateway >= 0.90 x substrate (medians): {'met' if ratio >= 0.9 else 'NOT met'}"
        f" ({ratio:.2f})"
    )


if __name__ == "__main__":
    sys.exit(main())
