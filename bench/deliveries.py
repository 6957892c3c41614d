"""Partner deliveries (issue 12): zip expansion and PGP decryption against the jobs a user
would write, on moto.

Side by side in one run, against the same moto server (its own process, bench/moto_server.py):

* **ours**: ``ingest.adapters.s3_zip.ZipExpander.open``, as fanout runs it: the central
  directory and the members read through ranged GETs (stdlib ``zipfile``), each member into its
  own multipart upload, all completed at the end. No local disk.
* **naive**: download the archive to a temporary directory (``download_file``), ``unzip`` it,
  upload each member with ``upload_file`` (boto3's transfer manager: multipart, 10 threads).
* **floor**: ``unzip -p archive > /dev/null`` on the local copy: inflating alone, no S3.

Each of ours and naive runs in a new interpreter (``multiprocessing`` spawn) that reports its
wall time and its ``ru_maxrss``; they take turns for ``--runs`` rounds and the medians count.
The archive (about 256 MiB by default, CSV-like members at about 2:1) is made for the run
in a temporary directory. The target is ours >= 1.0 x naive's rate. Then one archive holding
one 1 GiB member is expanded by ours alone, with its peak RSS.

PGP (``--pgp-mib``, 256 by default; 0 skips it; ``--archive-mib 0`` skips the zip part):

* **ours**: ``ingest.adapters.s3_pgp.PgpDecryptor.open`` as fanout runs it (the key read from
  its Secrets Manager secret on the same moto), except that its size limit (200 MiB) is raised
  to the message's size: the run says so;
* **naive**: ``download_file`` to a temporary directory, ``gpg --decrypt --output``,
  ``upload_file`` of the plaintext;
* **floor**: ``gpg --decrypt`` of the local copy to ``/dev/null``.

The key is a Curve25519 key made for the run (imported into a throw-away gpg home); the
message is the same CSV-like blocks, encrypted by gpg (as partners do), uncompressed so
that the message is ``--pgp-mib`` MiB. Target: ours >= 1.0 x naive,
peak RSS <= 128 MiB.

    .venv/bin/python bench/deliveries.py         # --archive-mib N (256), --members N (8),
                                                 # --runs N (3), --big-member-mib N (1024),
                                                 # --pgp-mib N (256)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = __file__.rsplit("/bench/", 1)[0]
sys.path.insert(0, ROOT)
sys.path.insert(0, f"{ROOT}/bench")

MIB = 1024 * 1024
BUCKET = "bench-deliveries"
REGION = "us-east-1"
BLOCK = MIB


def _block(seed: int) -> bytes:
    """1 MiB of order lines, about 2:1 under deflate (random ids and amounts)."""
    rnd = os.urandom(BLOCK // 2).hex()
    lines, i, length = [], 0, 0
    while length < BLOCK:
        line = f"{rnd[i : i + 12]},ACME,{int(rnd[i + 12 : i + 17], 16) / 100:.2f},{seed}\n"
        lines.append(line)
        length += len(line)
        i = (i + 17) % (len(rnd) - 17)
    return "".join(lines).encode()[:BLOCK]


def make_archive(path: Path, member_sizes: list[int]) -> int:
    """A zip of CSV-like members of these sizes (MiB multiples); returns the expanded bytes.

    Each member repeats 16 different random 1 MiB blocks: deflate's 32 KiB window sees no
    repetition, so the ratio is the blocks' own."""
    blocks = [_block(i) for i in range(16)]
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for n, size in enumerate(member_sizes):
            with archive.open(f"orders/part-{n:03d}.csv", "w", force_zip64=True) as member:
                for b in range(size // BLOCK):
                    member.write(blocks[b % len(blocks)])
            total += size
    return total


def _client(endpoint: str) -> Any:
    import boto3

    from ingest.adapters.multipart import STREAMING_S3_CONFIG

    return boto3.client("s3", region_name=REGION, endpoint_url=endpoint, config=STREAMING_S3_CONFIG)


def _ours(endpoint: str, key: str, size: int, etag: str, queue: Any) -> None:
    from ingest.adapters.s3_zip import ZipExpander
    from ingest.domain.envelopes import EnvelopeSource

    s3 = _client(endpoint)
    started = time.perf_counter()
    written = ZipExpander(s3).open(EnvelopeSource(BUCKET, key, size, etag, None), None)
    elapsed = time.perf_counter() - started
    queue.put((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(written)))


def _naive(endpoint: str, key: str, size: int, etag: str, queue: Any) -> None:
    import boto3

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="naive-zip-") as tmp:
        local = Path(tmp, "archive.zip")
        s3.download_file(BUCKET, key, str(local))
        out = Path(tmp, "out")
        subprocess.run(["unzip", "-q", str(local), "-d", str(out)], check=True)
        count = 0
        for file in sorted(p for p in out.rglob("*") if p.is_file()):
            s3.upload_file(str(file), BUCKET, f"naive/{file.relative_to(out).as_posix()}")
            count += 1
    elapsed = time.perf_counter() - started
    queue.put((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, count))


PGP_SERVER = "s-0000000000bench"


def _pgp_ours(endpoint: str, key: str, size: int, etag: str, queue: Any) -> None:
    import boto3

    from ingest.adapters.pgp_keys import PgpKeys
    from ingest.adapters.s3_pgp import PgpDecryptor
    from ingest.domain.envelopes import EnvelopeSource

    s3 = _client(endpoint)
    secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint)
    step = PgpDecryptor(s3, PgpKeys(secrets, PGP_SERVER), max_bytes=size)
    started = time.perf_counter()
    written = step.open(EnvelopeSource(BUCKET, key, size, etag, None), None)
    elapsed = time.perf_counter() - started
    queue.put((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(written)))


def _pgp_naive(endpoint: str, key: str, size: int, etag: str, queue: Any) -> None:
    import boto3

    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="naive-pgp-") as tmp:
        local, out = Path(tmp, "message.pgp"), Path(tmp, "plain.csv")
        s3.download_file(BUCKET, key, str(local))
        subprocess.run(
            ["gpg", "--batch", "--quiet", "--decrypt", "--output", str(out), str(local)],
            check=True,
        )
        s3.upload_file(str(out), BUCKET, "naive/plain.csv")
    elapsed = time.perf_counter() - started
    # gpg is a child of this process: its peak counts too
    rss = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    queue.put((elapsed, rss / 1024, 1))


def _gpg_floor(path: Path) -> float:
    started = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(
            ["gpg", "--batch", "--quiet", "--decrypt", str(path)], stdout=null, check=True
        )
    return time.perf_counter() - started


def _pgp(s3: Any, endpoint: str, tmp: str, mib: int, runs: int) -> None:
    import json

    import boto3

    tsk = _gpg_key(tmp)
    boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint).create_secret(
        Name=f"aws/transfer/{PGP_SERVER}/bench",
        SecretString=json.dumps({"PGPPrivateKey": str(tsk), "PGPPassphrase": ""}),
    )
    message = _gpg_message(tmp, mib)
    size = message.stat().st_size
    key = "inbound/bench/pgp/orders.csv.pgp"
    s3.upload_file(str(message), BUCKET, key)
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    print(f"\nPGP message {size / MIB:.0f} MiB (gpg, Curve25519; ours' 200 MiB limit raised)")
    ours, naive, floor = [], [], []
    for run in range(runs):
        for name, target, results in (("ours", _pgp_ours, ours), ("naive", _pgp_naive, naive)):
            took, rss, count = _in_child(target, endpoint, key, size, etag)
            assert count == 1, (name, count)
            results.append((took, rss))
            _clear(s3, "inbound/bench/pgp/", key)
            _clear(s3, "naive/", key)
            print(f"  run {run + 1} {name:5s} {took:6.2f} s  {size / MIB / took:6.1f} MiB/s  "
                  f"peak RSS {rss:6.0f} MiB")  # fmt: skip
        floor.append(_gpg_floor(message))
    med = {n: statistics.median(t for t, _ in r) for n, r in (("ours", ours), ("naive", naive))}
    print("\nPGP decryption, medians of", runs)
    print(f"  ours   {size / MIB / med['ours']:7.1f} MiB/s  peak RSS {max(r for _, r in ours):.0f} "
          f"MiB (+ {2 * size / MIB:.0f} MiB of /tmp)")  # fmt: skip
    print(f"  naive  {size / MIB / med['naive']:7.1f} MiB/s  peak RSS "
          f"{max(r for _, r in naive):.0f} MiB (+ {2 * size / MIB:.0f} MiB of /tmp)")  # fmt: skip
    print(
        f"  floor  {size / MIB / statistics.median(floor):7.1f} MiB/s  (gpg --decrypt > /dev/null)"
    )
    print(f"  ours / naive = {med['naive'] / med['ours']:.2f} x (target >= 1.0 x, RSS <= 128 MiB)")


def _gpg_key(tmp: str) -> Any:
    """A Curve25519 key made for the run, imported into a throw-away gpg home (GNUPGHOME:
    the naive job's, the floor's and the messages' gpg)."""
    import pysequoia

    tsk = pysequoia.Tsk.generate("bench <bench@example.com>")
    home = Path(tmp, "gnupg")
    home.mkdir(mode=0o700)
    os.environ["GNUPGHOME"] = str(home)
    subprocess.run(["gpg", "--batch", "--quiet", "--import"], input=str(tsk).encode(), check=True)
    return tsk


def _gpg_message(tmp: str, mib: int) -> Path:
    """A ``mib`` MiB message of CSV-like blocks encrypted by gpg, uncompressed."""
    plain = Path(tmp, "plain.csv")
    with plain.open("wb") as f:
        for i in range(mib):
            f.write(_block(i))
    message = Path(tmp, f"orders-{mib}.csv.pgp")
    # by gpg, as a partner would (gpg 2.2 cannot read pysequoia's RFC 9580 v6 PKESK packets)
    subprocess.run(
        ["gpg", "--batch", "--quiet", "--yes", "--trust-model", "always", "--compress-algo",
         "none", "--encrypt", "--recipient", "bench@example.com", "--output", str(message),
         str(plain)],
        check=True,
    )  # fmt: skip
    plain.unlink()
    return message


def _decrypt_alone(message: str, key: str, no_mmap: bool, queue: Any) -> None:
    """``pysequoia.decrypt_file`` alone in a new interpreter: its time and peak RSS over the
    interpreter's (with the module imported and the key read)."""
    import pysequoia

    if no_mmap:
        os.environ["SEQUOIA_DONT_MMAP"] = "1"
    else:
        os.environ.pop("SEQUOIA_DONT_MMAP", None)
    decryptor = pysequoia.Tsk.from_bytes(Path(key).read_bytes()).decryptor(None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sequoia-") as out:
        pysequoia.decrypt_file(message, str(Path(out, "plain")), decryptor)
    elapsed = time.perf_counter() - started
    queue.put((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, int(before)))


def _sequoia_alone(tmp: str, sizes: list[int]) -> None:
    """Peak RSS of ``decrypt_file`` by message size, Sequoia mmapping the file or not."""
    tsk = _gpg_key(tmp)
    key = Path(tmp, "key.asc")
    key.write_text(str(tsk))
    print("\npysequoia.decrypt_file alone (peak RSS; the interpreter before it in brackets)")
    for mib in sizes:
        message = _gpg_message(tmp, mib)
        row = []
        for no_mmap in (False, True):
            took, rss, before = _in_child(_decrypt_alone, str(message), str(key), no_mmap)
            mode = "no mmap" if no_mmap else "mmap"
            row.append(f"{mode:7s} {rss:5.0f} MiB ({before}) {took:5.2f} s")
        print(f"  {mib:5d} MiB message:  " + "   ".join(row))
        message.unlink()


def _in_child(target: Any, *args: Any) -> tuple[float, float, int]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"{target.__name__} failed ({proc.exitcode})")
    return result  # type: ignore[no-any-return]


def _clear(s3: Any, prefix: str, keep: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] != keep]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


def _unzip_floor(path: Path) -> float:
    started = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(["unzip", "-p", str(path)], stdout=null, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive-mib", type=int, default=256)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-member-mib", type=int, default=1024)
    parser.add_argument("--pgp-mib", type=int, default=256)
    parser.add_argument(
        "--sequoia-mib",
        default="",
        help="message sizes (MiB, comma-separated) for decrypt_file alone, mmap and not",
    )
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "testing"  # moto's; the spawned children inherit them
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.pop("AWS_CA_BUNDLE", None)
    if args.archive_mib and shutil.which("unzip") is None:
        sys.exit("unzip is needed for the naive job and the floor: apt-get install -y unzip")
    if args.pgp_mib and shutil.which("gpg") is None:
        sys.exit("gpg is needed for the naive PGP job and its floor: apt-get install -y gnupg")
    if args.sequoia_mib:
        with tempfile.TemporaryDirectory(prefix="bench-sequoia-") as tmp:
            _sequoia_alone(tmp, [int(m) for m in args.sequoia_mib.split(",")])
        if not (args.pgp_mib or args.archive_mib):
            return
    from moto_server import moto_server

    with (
        tempfile.TemporaryDirectory(prefix="bench-deliveries-") as tmp,
        moto_server(Path(tmp, "moto.log")) as moto,
    ):
        s3 = _client(moto.endpoint_url)
        s3.create_bucket(Bucket=BUCKET)
        if args.pgp_mib:
            _pgp(s3, moto.endpoint_url, tmp, args.pgp_mib, args.runs)
        if not args.archive_mib:
            return
        # members sized so that the archive is about --archive-mib (the blocks deflate ~2:1)
        expanded_mib = int(args.archive_mib * 2)
        per = max(1, expanded_mib // args.members)
        archive = Path(tmp, "batch.zip")
        expanded = make_archive(archive, [per * MIB] * args.members)
        size = archive.stat().st_size
        key = "inbound/bench/zip/batch.zip"
        s3.upload_file(str(archive), BUCKET, key)
        etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
        print(
            f"archive {size / MIB:.0f} MiB, {args.members} members, {expanded / MIB:.0f} MiB "
            f"expanded ({expanded / size:.2f}:1); moto at {moto.endpoint_url}"
        )
        ours, naive, floor = [], [], []
        for run in range(args.runs):
            for name, target, results in (("ours", _ours, ours), ("naive", _naive, naive)):
                took, rss, count = _in_child(target, moto.endpoint_url, key, size, etag)
                assert count == args.members, (name, count)
                results.append((took, rss))
                _clear(s3, "inbound/bench/zip/", key)
                _clear(s3, "naive/", key)
                print(
                    f"  run {run + 1} {name:5s} {took:6.2f} s  {size / MIB / took:6.1f} MiB/s of "
                    f"archive  peak RSS {rss:6.0f} MiB"
                )
            floor.append(_unzip_floor(archive))
        med = {n: statistics.median(t for t, _ in r) for n, r in (("ours", ours), ("naive", naive))}
        floor_s = statistics.median(floor)
        print("\nzip expansion, medians of", args.runs)
        print(
            f"  ours   {size / MIB / med['ours']:7.1f} MiB/s archive  "
            f"{expanded / MIB / med['ours']:7.1f} MiB/s expanded  "
            f"peak RSS {max(r for _, r in ours):.0f} MiB"
        )
        print(
            f"  naive  {size / MIB / med['naive']:7.1f} MiB/s archive  "
            f"{expanded / MIB / med['naive']:7.1f} MiB/s expanded  "
            f"peak RSS {max(r for _, r in naive):.0f} MiB "
            f"(+ {size / MIB + expanded / MIB:.0f} MiB of /tmp)"
        )
        print(
            f"  floor  {size / MIB / floor_s:7.1f} MiB/s archive  "
            f"{expanded / MIB / floor_s:7.1f} MiB/s expanded  (unzip -p > /dev/null)"
        )
        print(f"  ours / naive = {med['naive'] / med['ours']:.2f} x (target >= 1.0 x)")

        if args.big_member_mib:
            big = Path(tmp, "big.zip")
            archive.unlink()
            total = make_archive(big, [args.big_member_mib * MIB])
            big_size = big.stat().st_size
            big_key = "inbound/bench/big/one.zip"
            s3.upload_file(str(big), BUCKET, big_key)
            big_etag = s3.head_object(Bucket=BUCKET, Key=big_key)["ETag"].strip('"')
            took, rss, _ = _in_child(_ours, moto.endpoint_url, big_key, big_size, big_etag)
            print(
                f"\none {total / MIB:.0f} MiB member ({big_size / MIB:.0f} MiB archive): ours "
                f"{took:.1f} s, {total / MIB / took:.1f} MiB/s expanded, peak RSS {rss:.0f} MiB"
            )


if __name__ == "__main__":
    main()
