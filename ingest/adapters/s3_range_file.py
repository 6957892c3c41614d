"""One S3 object version as a seekable binary file: ranged GETs with read-ahead.

``zipfile`` needs random access (the central directory is at the end of an archive, each
member's header at its offset), then reads each member front to back. :class:`S3RangeFile`
holds a *window* of the object (one ranged ``GetObject`` of :data:`WINDOW` bytes); a read
outside it loads the window there. After a full window, the next one is fetched on a thread
of its own while this one is read, so that the GETs overlap the inflating and the uploads
instead of taking turns with them. Reads are pinned to the version (by version id, else by
``If-Match`` on the ETag): an object replaced mid-way is never read mixed.
"""

from __future__ import annotations

import io
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.sdk import error_code, is_not_found, unavailable
from ingest.domain.envelopes import EnvelopeSource
from ingest.errors import ObjectNotFoundError, StaleVersionError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

WINDOW = 8 * 1024 * 1024


class S3RangeFile(io.RawIOBase):
    """A raw, seekable file over one object version; wrap it in :class:`io.BufferedReader`."""

    def __init__(self, s3: S3Client, source: EnvelopeSource, *, window: int = WINDOW) -> None:
        self._s3 = s3
        self._source = source
        self._window_size = window
        self._pos = 0
        self._start = 0
        self._data = b""
        self._next: tuple[int, Future[bytes]] | None = None
        self._ahead = ThreadPoolExecutor(1, thread_name_prefix="s3-read-ahead")
        #: ranged GETs sent (read-ahead included)
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._source.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        pos = self._pos
        if pos >= self._source.size:
            return 0
        if not self._start <= pos < self._start + len(self._data):
            self._load(pos)
        offset = pos - self._start
        n = min(len(buffer), len(self._data) - offset)
        memoryview(buffer)[:n] = memoryview(self._data)[offset : offset + n]
        self._pos += n
        return n

    def close(self) -> None:
        if self._next is not None:
            self._next[1].cancel()
            self._next = None
        self._ahead.shutdown(wait=False)
        self._data = b""
        super().close()

    def _load(self, pos: int) -> None:
        ahead, self._next = self._next, None
        if ahead is not None and ahead[0] == pos:
            data = ahead[1].result()
        else:
            if ahead is not None:
                ahead[1].cancel()  # a seek elsewhere: a GET already under way is ignored
            data = self._get(pos)
        self._start, self._data = pos, data
        end = pos + len(data)
        if len(data) == self._window_size and end < self._source.size:
            self._next = (end, self._ahead.submit(self._get, end))

    def _get(self, start: int) -> bytes:
        source = self._source
        end = min(start + self._window_size, source.size)
        pin: dict[str, Any] = (
            {"VersionId": source.version_id}
            if source.version_id
            else {"IfMatch": f'"{source.etag}"'}
        )
        where = f"s3://{source.bucket}/{source.key}"
        try:
            resp = self._s3.get_object(
                Bucket=source.bucket, Key=source.key, Range=f"bytes={start}-{end - 1}", **pin
            )
            data: bytes = resp["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in ("PreconditionFailed", "412"):
                raise StaleVersionError(f"{where} no longer has ETag {source.etag}") from exc
            if is_not_found(exc):
                raise ObjectNotFoundError(source.bucket, source.key) from exc
            raise unavailable(exc, "s3", "GetObject", where) from exc
        self.requests += 1
        return data
