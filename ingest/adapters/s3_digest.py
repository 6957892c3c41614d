"""A landed object's content digest: streamed through hashlib, or S3's own checksum.

:func:`stream_digest` is the one way the code hashes an object's bytes (checksum sidecars and
duplicate detection both use it, and so does ``bench/deliveries.py``): it reads the store's
blocks once, in constant memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.s3 import S3Store
from ingest.adapters.sdk import is_not_found, unavailable
from ingest.domain.digests import CRC64NVME, SHA256, Digest, from_s3_checksum
from ingest.errors import ObjectNotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

#: S3's response field → our algorithm name, in the order they are preferred.
_S3_FULL_OBJECT_CHECKSUMS = (("ChecksumSHA256", SHA256), ("ChecksumCRC64NVME", CRC64NVME))


def stream_digest(blocks: Iterable[bytes], algorithm: str) -> str:
    """The hex digest (``hashlib.new(algorithm)``) of the bytes in ``blocks``."""
    hasher = hashlib.new(algorithm)
    for block in blocks:
        hasher.update(block)
    return hasher.hexdigest()


class S3Digests:
    """Digests of landed objects (the ``ContentDigests`` port). Takes an injected client."""

    def __init__(self, client: S3Client, store: S3Store | None = None) -> None:
        self._s3 = client
        self._store = store or S3Store(client)

    def streamed(self, bucket: str, key: str, *, version_id: str | None, algorithm: str) -> str:
        blocks = self._store.iter_blocks(bucket, key, version_id=version_id)
        return stream_digest(blocks, algorithm)

    def stored(self, bucket: str, key: str, *, version_id: str | None) -> Digest | None:
        """S3's full-object SHA-256 or CRC64NVME of the version, if S3 has one.

        A multipart object's checksum is of the whole object only when its ``ChecksumType``
        is ``FULL_OBJECT`` (a ``COMPOSITE`` one is a checksum of the parts' checksums)."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            head = self._s3.head_object(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if is_not_found(exc):
                raise ObjectNotFoundError(bucket, key) from exc
            raise unavailable(exc, "s3", "HeadObject", f"s3://{bucket}/{key}") from exc
        multipart = "-" in head.get("ETag", "")
        # a multipart object's checksum is of its parts unless S3 says FULL_OBJECT (moto, for
        # one, leaves ChecksumType out of a composite one)
        kind = head.get("ChecksumType", "COMPOSITE" if multipart else "FULL_OBJECT")
        if kind != "FULL_OBJECT":
            return None
        for field, algorithm in _S3_FULL_OBJECT_CHECKSUMS:
            value = head.get(field)
            if isinstance(value, str) and value and "-" not in value:  # "<b64>-<parts>": composite
                return from_s3_checksum(algorithm, value)
        return None
