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
each path used, and the path's CPU floor on this machine (``bench/cpu_floor.py``). The servers
are started in ``bench/gateway_rig.py``.
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

from boto3.s3.transfer import TransferConfig
from cpu_floor import cpu_floor, floor_line, serial_complete_seconds, tree_cpu
from gateway_rig import BUCKET, REGION, Rig, start_rig
from sftp_servers import CIPHER, sftp_put

from ingest_local.gateway import Limits

Upload = Callable[[str], None]


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
    rig = start_rig(args, work, procs)
    rss_growth: list[int] = []
    null_cpu: list[float] = []
    cases = upload_cases(rig, rss_growth, null_cpu)
    results, cpu, cpu_gateway_process = rotate(cases, args.runs, rig)
    serial = statistics.median(
        serial_complete_seconds(rig.s3, BUCKET, f"complete-cost/{i}", rig.size) for i in range(2)
    )
    report(results, rss_growth, rig.size, args)
    report_cpu(results, cpu, cpu_gateway_process, null_cpu, serial)
    return 0


def upload_cases(rig: Rig, rss_growth: list[int], null_cpu: list[float]) -> dict[str, Upload]:
    """Each path's upload of the payload under a given name. The gateway's appends its RSS
    growth to ``rss_growth``, the null sink's the sink's CPU seconds to ``null_cpu``."""
    s3, src, size, key_path = rig.s3, rig.src, rig.size, rig.key_path
    config = TransferConfig()  # boto3's defaults: 8 MiB parts, 10 threads, CRC32 per part
    gw, sshd_srv, null, rclone_srv = rig.gateway, rig.sshd, rig.null, rig.rclone

    def substrate(name: str) -> None:
        s3.upload_file(str(src), BUCKET, f"substrate/{name}", Config=config)

    def gateway(name: str) -> None:
        with RssSampler(gw.pid) as sampler:
            sftp_put(gw.port, "bench", key_path, gw.known_hosts, src, dst=name)
        rss_growth.append(sampler.peak - sampler.baseline)
        head = s3.head_object(Bucket=BUCKET, Key=f"inbound/bench/{name}")
        assert head["ContentLength"] == size, "the gateway stored the whole file"

    def sshd(name: str) -> None:
        out = str(rig.work / "sshd-out.bin")
        sftp_put(sshd_srv.port, "root", key_path, sshd_srv.known_hosts, src, dst=out)

    def asyncssh_sink(name: str) -> None:
        before = tree_cpu(null.pid)
        sftp_put(null.port, "bench", key_path, null.known_hosts, src, dst=name)
        null_cpu.append(tree_cpu(null.pid) - before)

    def rclone(name: str) -> None:
        assert rclone_srv is not None
        sftp_put(rclone_srv.port, "bench", key_path, rclone_srv.known_hosts, src, dst=name)
        assert s3.head_object(Bucket=BUCKET, Key=f"rclone/{name}")["ContentLength"] == size

    cases: dict[str, Upload] = {
        "substrate": substrate,
        "gateway": gateway,
        "sshd": sshd,
        "asyncssh": asyncssh_sink,
    }
    if rclone_srv is not None:
        cases["rclone"] = rclone
    return cases


def rotate(
    cases: dict[str, Upload], runs: int, rig: Rig
) -> tuple[dict[str, list[float]], dict[str, list[float]], list[float]]:
    """Every path ``runs`` times; per path its seconds and the CPU seconds of the whole path
    (:func:`path_cpu`) per run, and the gateway process's own CPU seconds per gateway run."""
    results: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    cpu_gateway_process: list[float] = []
    gw_pid, moto_pid = rig.gateway.pid, rig.moto_pid
    names = list(cases)
    for run_no in range(runs):
        # rotated order, so no path always runs first (on a colder or quieter machine)
        for name in names[run_no % len(names) :] + names[: run_no % len(names)]:
            before, gw_before = path_cpu(gw_pid, moto_pid), tree_cpu(gw_pid)
            results[name].append(timed(partial(cases[name], f"run{run_no}.bin")))
            cpu[name].append(path_cpu(gw_pid, moto_pid) - before)
            if name == "gateway":
                cpu_gateway_process.append(tree_cpu(gw_pid) - gw_before)
    return results, cpu, cpu_gateway_process


def report_cpu(
    results: dict[str, list[float]],
    cpu: dict[str, list[float]],
    cpu_gateway_process: list[float],
    null_cpu: list[float],
    serial: float,
) -> None:
    """The CPU each path used, the gateway path's CPU floor, and the gateway's CPU budget."""
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
