"""Checksum sidecars and duplicate digests (issues 12 §5 and 13 §3): how fast the pipeline
computes a landed object's digest, beside ``sha256sum`` of the same bytes on this machine.

Side by side in one run, against one moto server in its own process (bench/moto_server.py):

* **ours**: ``S3Digests.streamed`` (ingest/adapters/s3_digest.py), what the sidecar gate and
  the duplicates gate run: hashlib over the store's 8 MiB blocks of one GET, in a child
  process (its peak RSS shows the memory is constant);
* **naive**: what a user would write: ``download_file`` to /tmp, then ``sha256sum`` it;
* **floor**: ``sha256sum`` of the same bytes from a local file (in the page cache), and
  hashlib over them in memory: the hashing alone, without S3;
* **S3's checksum** (the duplicates gate's first choice): ``S3Digests.stored``, one
  ``HeadObject`` with ``ChecksumMode=ENABLED`` of the object uploaded with a full-object
  SHA-256, against streaming it.

Every digest is checked against the others (they must all be the same SHA-256).

    .venv/bin/python bench/sidecars.py [--mib 256] [--runs 3] [--algorithm sha256|md5]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.moto_server import moto_server

MIB = 1024 * 1024
BUCKET = "bench-sidecars"
KEY = "inbound/acme/settlements/big.csv"
FULL = "inbound/acme/settlements/big-full-object.csv"
REGION = "us-east-1"


def _client(endpoint: str) -> Any:
    import boto3

    from ingest.adapters.multipart import STREAMING_S3_CONFIG

    return boto3.client("s3", region_name=REGION, endpoint_url=endpoint, config=STREAMING_S3_CONFIG)


def _ours(endpoint: str, key: str, algorithm: str, queue: Any) -> None:
    from ingest.adapters.s3_digest import S3Digests

    digests = S3Digests(_client(endpoint))
    started = time.perf_counter()
    digest = digests.streamed(BUCKET, key, version_id=None, algorithm=algorithm)
    elapsed = time.perf_counter() - started
    queue.put((elapsed, digest, _peak_rss_kib()))


def _peak_rss_kib() -> int:
    """This process's own peak RSS (``VmHWM``). Not ``ru_maxrss``: Linux carries the forking
    parent's high-water mark over into a spawned child's (``execve`` records the old mm's), so a
    child of a parent that once held a large buffer would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _in_child(endpoint: str, key: str, algorithm: str) -> tuple[float, str, int]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_ours, args=(endpoint, key, algorithm, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"ours failed ({proc.exitcode})")
    return result  # type: ignore[no-any-return]


def _tool(algorithm: str) -> str:
    return f"{algorithm}sum"


def _sum_of(path: Path, algorithm: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run([_tool(algorithm), str(path)], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, out.stdout.split()[0]


def _naive(s3: Any, tmp: str, algorithm: str) -> tuple[float, str]:
    path = Path(tmp) / "download.csv"
    started = time.perf_counter()
    s3.download_file(BUCKET, KEY, str(path))
    _, digest = _sum_of(path, algorithm)
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed, digest


def _write_data(path: Path, mib: int) -> None:
    """``mib`` MiB of settlement lines (random ids and amounts: not compressible)."""
    with path.open("wb") as out:
        for _ in range(mib):
            rnd = os.urandom(MIB // 2).hex()
            out.write(rnd.encode()[: MIB - 1] + b"\n")


def _upload_full_object(s3: Any, path: Path) -> None:
    """The same bytes as a multipart upload with a full-object SHA-256 (S3 computes it)."""
    upload = s3.create_multipart_upload(
        Bucket=BUCKET, Key=FULL, ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT"
    )
    parts = []
    with path.open("rb") as data:
        number = 1
        while block := data.read(64 * MIB):
            part = s3.upload_part(
                Bucket=BUCKET,
                Key=FULL,
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=block,
                ChecksumAlgorithm="SHA256",
            )
            parts.append(
                {
                    "ETag": part["ETag"],
                    "PartNumber": number,
                    "ChecksumSHA256": part["ChecksumSHA256"],
                }
            )
            number += 1
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=FULL, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )


def _rate(mib: int, seconds: list[float]) -> float:
    return mib / statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--algorithm", choices=("sha256", "md5"), default="sha256")
    args = parser.parse_args()
    algorithm, mib = args.algorithm, args.mib
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "testing"  # moto's; the spawned children inherit them
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.pop("AWS_CA_BUNDLE", None)
    with tempfile.TemporaryDirectory(prefix="bench-sidecars-") as tmp:
        data = Path(tmp) / "data.csv"
        _write_data(data, mib)
        with moto_server(Path(tmp) / "moto.log") as moto:
            s3 = _client(moto.endpoint_url)
            s3.create_bucket(Bucket=BUCKET)
            s3.upload_file(str(data), BUCKET, KEY)
            ours, naive, floor, memory = [], [], [], []
            rss: list[int] = []
            digests = set()
            for _ in range(args.runs):
                seconds, digest, peak = _in_child(moto.endpoint_url, KEY, algorithm)
                ours.append(seconds)
                rss.append(peak)
                digests.add(digest)
                seconds, digest = _naive(s3, tmp, algorithm)
                naive.append(seconds)
                digests.add(digest)
                seconds, digest = _sum_of(data, algorithm)
                floor.append(seconds)
                digests.add(digest)
                started = time.perf_counter()
                hasher = hashlib.new(algorithm)
                with data.open("rb") as f:
                    while block := f.read(8 * MIB):
                        hasher.update(block)
                memory.append(time.perf_counter() - started)
                digests.add(hasher.hexdigest())
            assert len(digests) == 1, f"the digests differ: {digests}"
            tool = _tool(algorithm)
            print(f"object: {mib} MiB, {algorithm}, {args.runs} runs (median), moto in a process")
            print(
                f"  ours (S3Digests.streamed, one GET)  {_rate(mib, ours):8.1f} MiB/s"
                f"   peak RSS {max(rss) / 1024:.0f} MiB"
            )
            print(f"  naive (download_file + {tool})  {_rate(mib, naive):8.1f} MiB/s")
            print(f"  floor: {tool} of a local file      {_rate(mib, floor):8.1f} MiB/s")
            print(f"  floor: hashlib over local blocks    {_rate(mib, memory):8.1f} MiB/s")
            print(
                f"  ours / naive = {statistics.median(naive) / statistics.median(ours):.2f} x;"
                f"  ours / {tool} = {statistics.median(floor) / statistics.median(ours):.2f} x"
            )
            if algorithm == "sha256":
                from ingest.adapters.s3_digest import S3Digests

                _upload_full_object(s3, data)
                checker = S3Digests(s3)
                heads = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    stored = checker.stored(BUCKET, FULL, version_id=None)
                    heads.append(time.perf_counter() - started)
                assert stored is not None and stored.value in digests, stored
                head_ms = statistics.median(heads) * 1000
                stream_ms = statistics.median(ours) * 1000
                print(
                    f"duplicates: S3's full-object SHA-256 (HeadObject) {head_ms:.1f} ms"
                    f" vs streaming {stream_ms:.0f} ms: {stream_ms / head_ms:.0f} x"
                )


if __name__ == "__main__":
    main()
