"""The S3 adapter: landed objects read in ranges pinned to one version, reject files written.

It takes an injected boto3 client. SDK errors are translated here into the project's
exception tree; botocore's standard retry mode (``ingest.adapters.aws.RETRY_CONFIG``) has
already retried throttling and transient errors by the time one reaches us.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.sdk import error_code, is_not_found, translated, unavailable
from ingest.domain.events import ObjectInfo
from ingest.errors import ObjectNotFoundError, StaleVersionError, StorageUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

READ_BUFFER = 1024 * 1024


class _BodyReader(io.RawIOBase):
    """A raw stream over a botocore StreamingBody, so io.BufferedReader can add readline()."""

    def __init__(self, body: Any, *, bucket: str, key: str) -> None:
        self._body = body
        self._where = f"s3://{bucket}/{key}"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except (BotoCoreError, OSError) as exc:
            raise StorageUnavailableError("s3", "GetObject", f"{self._where}: {exc}") from exc
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        self._body.close()
        super().close()


def _s3_error(exc: ClientError | BotoCoreError, bucket: str, key: str, operation: str) -> Exception:
    if is_not_found(exc):
        return ObjectNotFoundError(bucket, key)
    return unavailable(exc, "s3", operation, f"s3://{bucket}/{key}")


class S3Store:
    """Reads landed objects and writes reject files."""

    def __init__(self, client: S3Client) -> None:
        self._s3 = client

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            resp = self._s3.head_object(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, bucket, key, "HeadObject") from exc
        return ObjectInfo(
            size=resp["ContentLength"],
            etag=resp["ETag"].strip('"'),
            version_id=resp.get("VersionId"),
        )

    def open_range(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None,
        start: int,
        etag: str | None = None,
        end: int | None = None,
    ) -> IO[bytes]:
        """A buffered binary stream from byte ``start`` to ``end`` (exclusive) or the end.

        The read is pinned to one object version: by version id when the bucket is versioned,
        else by ``If-Match`` on the ETag, so a file replaced mid-way is never read mixed.
        """
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        elif etag:
            kwargs["IfMatch"] = f'"{etag}"'
        if end is not None:
            if end <= start:
                return io.BytesIO(b"")
            kwargs["Range"] = f"bytes={start}-{end - 1}"
        elif start > 0:
            kwargs["Range"] = f"bytes={start}-"
        try:
            resp = self._s3.get_object(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            if code == "InvalidRange":  # start is at or past the end: nothing to read
                return io.BytesIO(b"")
            if code in ("PreconditionFailed", "412"):
                raise StaleVersionError(f"s3://{bucket}/{key} no longer has ETag {etag}") from exc
            raise _s3_error(exc, bucket, key, "GetObject") from exc
        raw = _BodyReader(resp["Body"], bucket=bucket, key=key)
        return io.BufferedReader(raw, buffer_size=READ_BUFFER)

    def iter_blocks(
        self, bucket: str, key: str, *, version_id: str | None, block_size: int = 8 * 1024**2
    ) -> Iterator[bytes]:
        """The object's bytes in blocks, read once in constant memory."""
        with self.open_range(bucket, key, version_id=version_id, start=0) as stream:
            while block := stream.read(block_size):
                yield block

    def put_file(self, bucket: str, key: str, body: IO[bytes], content_type: str) -> None:
        """Upload a local file object (multipart when large, by boto3's transfer manager)."""
        with translated("s3", "PutObject", f"s3://{bucket}/{key}"):
            self._s3.upload_fileobj(body, bucket, key, ExtraArgs={"ContentType": content_type})

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every current object under ``prefix``; returns how many."""
        deleted = 0
        with translated("s3", "DeleteObjects", f"s3://{bucket}/{prefix}"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                keys: list[ObjectIdentifierTypeDef] = [
                    {"Key": o["Key"]} for o in page.get("Contents", [])
                ]
                if keys:
                    self._s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                    deleted += len(keys)
        return deleted

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """The keys of every current object under ``prefix``, in key order."""
        keys: list[str] = []
        with translated("s3", "ListObjectsV2", f"s3://{bucket}/{prefix}"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def read_text(self, bucket: str, key: str) -> tuple[str, str]:
        """A small text object and its ETag (feeds config)."""
        try:
            resp = self._s3.get_object(Bucket=bucket, Key=key)
            body = resp["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, bucket, key, "GetObject") from exc
        return body.decode("utf-8"), resp["ETag"].strip('"')
