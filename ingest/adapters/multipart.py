"""S3 multipart uploads from asyncio code: the calls both streaming writers share.

The SFTP gateway (bytes pushed in by a client) and the connector engine (bytes pulled from
a partner's server) both stream into S3 the same way, through :class:`MultipartUpload`:

* boto3 is blocking, so every call runs through the owner's
  :class:`~ingest.shared.aio.Bridge` and the event loop keeps moving SSH packets meanwhile;
* every part carries a CRC32 checksum (``ChecksumAlgorithm=CRC32``, as the AWS SDKs'
  transfer managers send it): S3 checks each part on arrival and stores a composite checksum
  for the object. Without one, S3 (and moto) compute a full-object CRC64 at completion;
* nothing is visible until :meth:`MultipartUpload.complete`; :meth:`MultipartUpload.abort`
  discards the parts.

:data:`STREAMING_S3_CONFIG` is the client configuration for these uploads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

from botocore.config import Config

from ingest.adapters.aws import RETRY_CONFIG

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    # only a type here: fanout imports this module for STREAMING_S3_CONFIG, and asyncio is
    # loaded only by the envelope steps that run multipart uploads
    from ingest.shared.aio import Bridge

MIB = 1024 * 1024
#: S3's smallest part (except the last one).
S3_MIN_PART_SIZE = 5 * MIB
CHECKSUM_ALGORITHM: Final = "CRC32"

#: The parts' integrity is carried by their CRC32 header (and TLS in AWS), so SigV4 does not
#: hash the payload again. botocore already skips that hash over HTTPS when a checksum is
#: present; this makes plain-HTTP endpoints (moto on loopback) behave the same, saving a
#: SHA-256 pass over every byte. The pool is large enough for many parallel parts.
STREAMING_S3_CONFIG = RETRY_CONFIG.merge(
    Config(s3={"payload_signing_enabled": False}, max_pool_connections=64)
)


class MultipartUpload:
    """One object being uploaded in parts; safe to share between asyncio tasks."""

    def __init__(self, s3: S3Client, bucket: str, key: str, *, bridge: Bridge) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        self._bridge = bridge
        self.upload_id: str | None = None
        self._parts: dict[int, CompletedPartTypeDef] = {}  # part number -> its Complete… entry

    @property
    def started(self) -> bool:
        return self.upload_id is not None

    async def start(self) -> None:
        """``CreateMultipartUpload`` (once)."""
        if self.upload_id is None:
            resp = await self._bridge.run(
                self._s3.create_multipart_upload,
                Bucket=self.bucket,
                Key=self.key,
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
            )
            self.upload_id = resp["UploadId"]

    async def upload_part(self, number: int, body: bytes | bytearray) -> None:
        """``UploadPart``; the part counts once S3 has acknowledged it."""
        if self.upload_id is None:
            raise RuntimeError("upload_part before start")
        resp = await self._bridge.run(
            self._s3.upload_part,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=cast(bytes, body),  # botocore sends any bytes-like object; no copy
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        )
        self._parts[number] = {
            "PartNumber": number,
            "ETag": resp["ETag"],
            "ChecksumCRC32": resp["ChecksumCRC32"],
        }

    def contiguous_parts(self) -> int:
        """How many parts from number 1 on have landed without a gap (the resume point)."""
        count = 0
        while count + 1 in self._parts:
            count += 1
        return count

    def keep_parts(self, count: int) -> None:
        """Forget parts after the first ``count``: they will be uploaded again."""
        self._parts = {n: p for n, p in self._parts.items() if n <= count}

    async def complete(self) -> dict[str, Any]:
        """``CompleteMultipartUpload`` with every acknowledged part; the object appears."""
        if self.upload_id is None:
            raise RuntimeError("complete before start")
        resp = await self._bridge.run(
            self._s3.complete_multipart_upload,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": [self._parts[n] for n in sorted(self._parts)]},
        )
        self.upload_id = None
        return dict(resp)

    async def put_object(self, body: bytes) -> dict[str, Any]:
        """A file too small for parts: one ``PutObject`` (with the same checksum)."""
        resp = await self._bridge.run(
            self._s3.put_object,
            Bucket=self.bucket,
            Key=self.key,
            Body=body,
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        )
        return dict(resp)

    async def abort(self) -> None:
        """``AbortMultipartUpload`` if one is open; no object appears and S3 frees the parts."""
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        self._parts.clear()
        await self._bridge.run(
            self._s3.abort_multipart_upload,
            Bucket=self.bucket,
            Key=self.key,
            UploadId=upload_id,
        )
