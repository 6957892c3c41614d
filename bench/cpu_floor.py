"""How fast a streaming path *could* be on this machine: CPU accounting for the benchmarks.

On a small machine the SFTP → S3 benchmarks are CPU-bound: the SSH peer encrypting, our
process decrypting and sending parts, and moto storing them all share the same cores, while
each limit (boto3 → moto, OpenSSH → disk) is measured with only its own stage running.
And moto's ``CompleteMultipartUpload`` is a serial tail: it copies the parts into one object
on one core (about 1.3 s for 256 MiB), so nothing can overlap with it.

:func:`cpu_floor` turns measured CPU-seconds into the shortest wall time any implementation of
the path could reach here: the serial tail, plus the rest of the CPU work spread perfectly
over every core. The benchmarks print it next to the measured time, so a missed target can be
told apart from an unreachable one.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants: their own time, the time of children they
    have already reaped, and the live children's (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of stat(5)
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = task.read_text().split()
        except OSError:
            continue
        total += sum(tree_cpu(int(k)) for k in kids)
    return total


def serial_complete_seconds(
    s3: Any, bucket: str, key: str, size: int, *, part_size: int = 8 * MIB
) -> float:
    """Wall time of moto's ``CompleteMultipartUpload`` alone for an object of ``size`` bytes
    (parts with CRC32, as every path in the benchmarks sends them). The object is deleted."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")[
        "UploadId"
    ]
    body = os.urandom(part_size)
    numbers = range(1, -(-size // part_size) + 1)

    def put(number: int) -> dict[str, Any]:
        last = min(part_size, size - (number - 1) * part_size)
        resp = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body[:last],
            ChecksumAlgorithm="CRC32",
        )
        return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumCRC32": resp["ChecksumCRC32"]}

    with ThreadPoolExecutor(max_workers=10) as pool:
        parts = list(pool.map(put, numbers))
    start = time.perf_counter()
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    elapsed = time.perf_counter() - start
    s3.delete_object(Bucket=bucket, Key=key)
    return elapsed


def cpu_floor(cpu_seconds: float, serial_seconds: float, cores: int | None = None) -> float:
    """Shortest wall time for ``cpu_seconds`` of work of which ``serial_seconds`` run alone on
    one core and the rest spreads over ``cores`` (default: this machine's)."""
    n = cores or os.cpu_count() or 1
    return serial_seconds + max(0.0, cpu_seconds - serial_seconds) / n


def floor_line(label: str, cpu_seconds: float, serial: float, limit: float) -> str:
    """One printed line: the floor of ``label``'s path and the best ratio it allows."""
    floor = cpu_floor(cpu_seconds, serial)
    cores = os.cpu_count() or 1
    return (
        f"CPU floor of the {label} path on {cores} cores: {serial:.2f} s serial complete + "
        f"({cpu_seconds:.2f} - {serial:.2f}) CPU-s / {cores} = {floor:.2f} s, "
        f"so at best {limit / floor:.2f} x the limit on this machine"
    )
