"""One S3 object version as a seekable binary file: ranged GETs streamed ahead of the reader.

``zipfile`` needs random access (the central directory is at the end of an archive, each
member's header at its offset), then reads each member front to back, and the members follow
each other. :class:`S3RangeFile` serves reads from one ranged ``GetObject`` streaming from
the position to the end of the object, read on a thread of its own :data:`WINDOW` bytes at a
time, at most :data:`WINDOWS_AHEAD` windows ahead of the reader: the GET overlaps the
inflating and the uploads instead of taking turns with them, and a whole archive read front
to back is one request. A read elsewhere (a seek) ends that GET and starts another there.
Reads are pinned to the version (by version id, else by ``If-Match`` on the ETag): an object
replaced mid-way is never read mixed.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.sdk import error_code, is_not_found, unavailable
from ingest.domain.envelopes import EnvelopeSource
from ingest.errors import ObjectNotFoundError, StaleVersionError, StorageUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

WINDOW = 8 * 1024 * 1024
WINDOWS_AHEAD = 1


class _Stream:
    """A ranged GET from ``start`` to the end, read into a small queue by its own thread."""

    def __init__(self, file: S3RangeFile, start: int) -> None:
        self.next_start = start  # where the next window taken from the queue begins
        self._file = file
        self._windows: queue.Queue[bytes | BaseException] = queue.Queue(WINDOWS_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(start,), name="s3-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, start: int) -> None:
        try:
            body = self._file.open_body(start)
            try:
                while not self._stop.is_set():
                    data = body.read(self._file.window)
                    if not data:
                        break
                    self._put(data)
            finally:
                body.close()
        except BaseException as exc:  # handed to the reader, which raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._windows.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def take(self) -> bytes:
        """The next window (b"" at the end of the object)."""
        while True:
            try:
                item = self._windows.get(timeout=0.1)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._windows.empty():
                    return b""
        if isinstance(item, BaseException):
            raise item
        self.next_start += len(item)
        return item

    def stop(self) -> None:
        self._stop.set()


class S3RangeFile(io.RawIOBase):
    """A raw, seekable file over one object version; wrap it in :class:`io.BufferedReader`."""

    def __init__(self, s3: S3Client, source: EnvelopeSource, *, window: int = WINDOW) -> None:
        self._s3 = s3
        self._source = source
        self.window = window
        self._pos = 0
        self._start = 0
        self._data = b""
        self._stream: _Stream | None = None
        #: ranged GETs sent
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
            if not self._data:
                return 0
        offset = pos - self._start
        n = min(len(buffer), len(self._data) - offset)
        memoryview(buffer)[:n] = memoryview(self._data)[offset : offset + n]
        self._pos += n
        return n

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream = None
        self._data = b""
        super().close()

    def _load(self, pos: int) -> None:
        stream = self._stream
        if stream is None or stream.next_start != pos:
            if stream is not None:
                stream.stop()
            stream = self._stream = _Stream(self, pos)
        self._start, self._data = pos, stream.take()

    def open_body(self, start: int) -> Any:
        """The body of a ranged GET from ``start`` to the end, pinned to the version."""
        source = self._source
        pin: dict[str, Any] = (
            {"VersionId": source.version_id}
            if source.version_id
            else {"IfMatch": f'"{source.etag}"'}
        )
        where = f"s3://{source.bucket}/{source.key}"
        self.requests += 1
        try:
            resp = self._s3.get_object(
                Bucket=source.bucket, Key=source.key, Range=f"bytes={start}-", **pin
            )
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in ("PreconditionFailed", "412"):
                raise StaleVersionError(f"{where} no longer has ETag {source.etag}") from exc
            if is_not_found(exc):
                raise ObjectNotFoundError(source.bucket, source.key) from exc
            raise unavailable(exc, "s3", "GetObject", where) from exc
        return _TranslatedBody(resp["Body"], where)


class _TranslatedBody:
    """A GET's streaming body whose read errors are the project's (retryable)."""

    def __init__(self, body: Any, where: str) -> None:
        self._body = body
        self._where = where

    def read(self, n: int) -> bytes:
        try:
            data: bytes = self._body.read(n)
        except (BotoCoreError, OSError) as exc:
            raise StorageUnavailableError("s3", "GetObject", f"{self._where}: {exc}") from exc
        return data

    def close(self) -> None:
        self._body.close()
