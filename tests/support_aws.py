"""Shared test helpers for AWS resources the template would create (moto has them empty)."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

from ingest.shared.polling import PollTimeoutError, poll_until

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Call ``probe`` until it returns something truthy and return that (the one wait of the
    tests, on :func:`ingest.shared.polling.poll_until`); an ``AssertionError`` naming
    ``what`` when ``timeout`` seconds pass first."""
    try:
        return poll_until(probe, timeout=timeout, interval=0.05, what=what)
    except PollTimeoutError as exc:
        raise AssertionError(str(exc)) from None


def fake_aws_env(monkeypatch: Any, region: str = "us-east-1") -> None:
    """Fake credentials, the region and Powertools' settings, and no endpoint override: what
    the handlers need to run against in-process moto."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "POWERTOOLS_METRICS_NAMESPACE": "sftp-ingest-tests",
        "POWERTOOLS_SERVICE_NAME": "tests",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def s3_crc32(data: bytes, part_size: int | None = None) -> str:
    """The ``ChecksumCRC32`` S3 reports for ``data``: the whole object's CRC32 for a single
    put, or for a multipart upload the CRC32 of the parts' CRC32s followed by ``-<parts>``."""

    def crc(chunk: bytes) -> bytes:
        return zlib.crc32(chunk).to_bytes(4, "big")

    if part_size is None:
        return base64.b64encode(crc(data)).decode()
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    composite = base64.b64encode(crc(b"".join(crc(p) for p in parts))).decode()
    return f"{composite}-{len(parts)}"
