"""Request checks and path forms of the connector API, with AWS's limits."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.errors import TransferRequestError
from ingest.shared.uris import parse_bucket_path

MAX_PATHS_PER_CALL = 10
DEFAULT_LISTING_ITEMS = 1000
MAX_LISTING_ITEMS = 10000


def split_s3_path(path: str, what: str) -> tuple[str, str]:
    """``/bucket/prefix`` (AWS's LocalDirectoryPath form) → (bucket, prefix)."""
    try:
        where = parse_bucket_path(path, key_required=False)
    except ValueError as exc:
        raise TransferRequestError(f"{what} must look like /bucket/prefix: {exc}") from None
    return where.bucket, where.key.strip("/")


def join_key(prefix: str, name: str) -> str:
    """An S3 key under ``prefix``."""
    return f"{prefix}/{name}" if prefix else name


def check_paths(paths: Sequence[str], what: str) -> list[str]:
    """AWS's limits on one call's paths: 1 to 10, no repeats, 1 to 1024 characters each."""
    out = list(paths)
    if not 1 <= len(out) <= MAX_PATHS_PER_CALL:
        raise TransferRequestError(
            f"{what} takes 1 to {MAX_PATHS_PER_CALL} paths per call, got {len(out)}"
        )
    if len(set(out)) != len(out):
        raise TransferRequestError(f"{what} names the same path twice")
    for p in out:
        if not p or len(p) > 1024:
            raise TransferRequestError(f"{what}: invalid path {p!r}")
    return out
