"""The S3 side of the gateway's file system: objects are files, key prefixes are directories.

Plain blocking functions over an injected S3 client; the SFTP server runs them on worker
threads. Directories follow Transfer Family over S3: a directory exists if an object's key
continues below it, or if its zero-byte ``dir/`` marker exists (what ``mkdir`` creates).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from ingest.adapters.sdk import is_not_found

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


@dataclass(frozen=True)
class Entry:
    """One name in a listing, or the result of a stat."""

    name: str
    is_dir: bool
    size: int = 0
    mtime: float | None = None
    etag: str | None = None


def _is_missing(exc: ClientError) -> bool:
    return is_not_found(exc)


def head_file(s3: S3Client, bucket: str, key: str) -> Entry | None:
    """The object ``key`` as a file, or None if there is no such object."""
    try:
        resp = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise
    modified: datetime = resp["LastModified"]
    return Entry(
        key.rsplit("/", 1)[-1],
        False,
        resp["ContentLength"],
        modified.timestamp(),
        etag=resp["ETag"].strip('"'),
    )


def dir_state(s3: S3Client, bucket: str, prefix: str) -> tuple[bool, bool]:
    """``(exists, empty)`` for the directory whose entries start with ``prefix`` (``…/``)."""
    resp = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=2)
    keys = [obj["Key"] for obj in resp.get("Contents", [])]
    if not keys:
        return False, True
    return True, all(k == prefix for k in keys)


def list_dir(s3: S3Client, bucket: str, prefix: str) -> Iterator[list[Entry]]:
    """Pages of the direct children of ``prefix`` (sub-directories first on each page)."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        entries = [
            Entry(p["Prefix"][len(prefix) :].rstrip("/"), True)
            for p in page.get("CommonPrefixes", [])
        ]
        entries += [
            Entry(obj["Key"][len(prefix) :], False, obj["Size"], obj["LastModified"].timestamp())
            for obj in page.get("Contents", [])
            if obj["Key"] != prefix  # the directory's own marker is not an entry
        ]
        yield entries


def make_dir(s3: S3Client, bucket: str, prefix: str) -> None:
    """Create the zero-byte marker object ``prefix`` (which ends in ``/``)."""
    s3.put_object(Bucket=bucket, Key=prefix, Body=b"")


def delete(s3: S3Client, bucket: str, key: str) -> None:
    """Delete one object (on a versioned bucket this adds a delete marker)."""
    s3.delete_object(Bucket=bucket, Key=key)


def move(s3: S3Client, bucket: str, src: str, dst: str) -> None:
    """Rename as S3 can: copy (managed, so objects over 5 GB work too), then delete."""
    s3.copy({"Bucket": bucket, "Key": src}, bucket, dst)
    s3.delete_object(Bucket=bucket, Key=src)


def read_range(s3: S3Client, bucket: str, key: str, start: int, length: int) -> bytes:
    """Bytes ``[start, start+length)`` of an object (fewer at its end)."""
    resp = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
    return resp["Body"].read()
