"""Streaming an SFTP upload straight into S3, with bounded memory.

Bytes are gathered into parts of ``part_size`` (≥ 8 MiB); each full part goes to
``UploadPart`` on a bridge thread while the client keeps sending. At most
``max_in_flight`` parts are uploading at once: when that many are busy, ``write`` waits,
which stops the SFTP session from reading more packets, so the SSH window pushes back on
the client. Memory per upload is therefore at most about
``(max_in_flight + 1) * part_size + max_ahead``, and nothing until the first write: part
buffers and parked writes are charged to the gateway-wide :class:`BufferBudget`, where a
write that needs memory beyond the budget waits for some (or is refused).

Nothing is visible in S3 until :meth:`StreamingUpload.complete` (``CompleteMultipartUpload``,
or a single ``PutObject`` for files smaller than one part). :meth:`StreamingUpload.abort`
discards everything. The S3 calls themselves are those of
:class:`ingest.adapters.multipart.MultipartUpload` (CRC32 on every part), shared with the
connector engine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from ingest.adapters.multipart import MIB, MultipartUpload
from ingest.shared.aio import Bridge
from ingest_local.gateway.buffers import BufferBudget, BufferBudgetExhausted

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

#: S3's minimum part size is 5 MiB; Transfer Family and the brief ask for at least 8 MiB.
MIN_PART_SIZE = 8 * MIB


class UploadError(Exception):
    """The upload cannot go on; the message is what the SFTP client is told."""


@dataclass(frozen=True)
class UploadResult:
    """What S3 says about the finished object."""

    size: int
    etag: str
    version_id: str | None


class StreamingUpload:
    """One file being written by one SFTP handle."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        *,
        bridge: Bridge,
        part_size: int = MIN_PART_SIZE,
        max_in_flight: int = 10,
        max_ahead: int = MIN_PART_SIZE,
        budget: BufferBudget | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self._upload = MultipartUpload(s3, bucket, key, bridge=bridge)
        self.bucket = bucket
        self.key = key
        self._part_size = part_size
        self._max_ahead = max_ahead
        self._slots = asyncio.Semaphore(max_in_flight)
        # Part buffers are fixed-size and come from the gateway's budget (which recycles
        # them) on the first write that needs one: an open handle that writes nothing holds
        # no memory. At most max_in_flight are uploading and one is being filled.
        self._budget = budget or BufferBudget(1 << 62, wait_seconds=0, keep_free=max_in_flight)
        self._cur: bytearray | None = None
        self._fill = 0  # bytes of self._cur that hold data
        self._buf_start = 0  # file offset of self._cur[0]
        self._ahead: dict[int, bytes] = {}  # out-of-order writes beyond the stream's end
        self._ahead_bytes = 0
        self._next_part = 1
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._refused: str | None = None
        self.high_water = 0  # largest end offset written (what fstat reports)

    # --- writing ---------------------------------------------------------------------------

    @property
    def bytes_received(self) -> int:
        """Bytes accepted so far (contiguous from offset 0 plus any parked ahead)."""
        return self._buf_start + self._fill + self._ahead_bytes

    async def write(self, offset: int, data: bytes) -> None:
        """Accept ``data`` at ``offset``.

        Writes usually arrive in order. A write a little ahead of the current end (some
        clients reorder within their pipeline window) is parked until the gap fills, up to
        ``max_ahead`` bytes. A write into data already sent to S3, or further ahead than
        that, cannot be supported on S3 and is refused with a clear message.
        """
        self._raise_if_failed()
        end = self._buf_start + self._fill
        if offset < self._buf_start:
            self._refuse(
                "random-access writes are not supported: offset "
                f"{offset} was already uploaded (S3 objects are written once, in order)"
            )
        if offset > end:
            # a write parked at the same offset again (a client retrying) replaces the first
            replaced = len(self._ahead.get(offset, b""))
            too_far = offset + len(data) - end > self._max_ahead
            if too_far or self._ahead_bytes - replaced + len(data) > self._max_ahead:
                self._refuse(
                    f"non-sequential write at offset {offset} while only {end} bytes "
                    "arrived in order: resume and random-access writes are not supported"
                )
            await self._charge(len(data))
            self._budget.release(replaced)
            self._ahead[offset] = bytes(data)
            self._ahead_bytes += len(data) - replaced
        else:
            await self._put(offset, memoryview(data))
            await self._drain_ahead()
        self.high_water = max(self.high_water, offset + len(data))

    async def _put(self, offset: int, data: memoryview) -> None:
        """Copy ``data`` (starting at or before the end) into part buffers, shipping full ones."""
        while data:
            if self._cur is None:
                self._cur = await self._take_part()
            pos = offset - self._buf_start  # 0 <= pos <= fill: callers guarantee it
            take = data[: self._part_size - pos]
            self._cur[pos : pos + len(take)] = take
            self._fill = max(self._fill, pos + len(take))
            offset += len(take)
            data = data[len(take) :]
            if self._fill == self._part_size:
                await self._ship_part()

    async def _drain_ahead(self) -> None:
        while self._ahead:
            end = self._buf_start + self._fill
            ready = sorted(o for o in self._ahead if o <= end)
            if not ready:
                return
            for parked in ready:
                data = self._ahead.pop(parked)
                self._ahead_bytes -= len(data)
                # a parked write may overlap bytes shipped since: keep only its new tail
                skip = max(0, self._buf_start - parked)
                try:
                    await self._put(parked + skip, memoryview(data)[skip:])
                finally:
                    self._budget.release(len(data))

    async def _take_part(self) -> bytearray:
        try:
            return await self._budget.take_part(self._part_size)
        except BufferBudgetExhausted as exc:
            self._refuse(str(exc))

    async def _charge(self, size: int) -> None:
        try:
            await self._budget.reserve(size)
        except BufferBudgetExhausted as exc:
            self._refuse(str(exc))

    async def _ship_part(self) -> None:
        """Hand the current buffer to an UploadPart task; the next write takes a new one."""
        await self._slots.acquire()
        try:
            self._raise_if_failed()
            await self._upload.start()
        except BaseException:
            self._slots.release()
            raise
        number, self._next_part = self._next_part, self._next_part + 1
        body, self._cur = self._cur, None
        assert body is not None
        del body[self._fill :]  # the last part is shorter: trimmed in place, not copied
        self._buf_start += self._fill
        self._fill = 0
        task = asyncio.get_running_loop().create_task(self._upload_part(number, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _upload_part(self, number: int, body: bytearray) -> None:
        try:
            await self._upload.upload_part(number, body)
        except Exception as exc:
            self._failure = self._failure or exc
        finally:
            self._budget.give_part(body, self._part_size)  # reused for a later part
            self._slots.release()

    # --- finishing -------------------------------------------------------------------------

    async def complete(self) -> UploadResult:
        """Send the rest and make the object visible; returns only once S3 has it."""
        self._raise_if_failed()
        if self._ahead:
            raise UploadError(
                f"the file has a gap: {self._ahead_bytes} bytes were written beyond offset "
                f"{self._buf_start + self._fill} but the bytes before them never arrived"
            )
        if not self._upload.started:
            size = self._fill
            put = await self._upload.put_object(bytes(self._cur[:size]) if self._cur else b"")
            self._give_back_current()
            return UploadResult(size, put["ETag"], put.get("VersionId"))
        if self._fill:
            await self._ship_part()
        await self._wait_parts()
        self._raise_if_failed()
        resp = await self._upload.complete()
        return UploadResult(self._buf_start, resp["ETag"], resp.get("VersionId"))

    async def abort(self) -> None:
        """Discard everything: no object appears, S3 frees the parts, the budget the memory."""
        await self._wait_parts()
        self._give_back_current()
        self._budget.release(sum(len(d) for d in self._ahead.values()))
        self._ahead.clear()
        self._ahead_bytes = 0
        await self._upload.abort()

    def _give_back_current(self) -> None:
        if self._cur is not None:
            self._budget.give_part(self._cur, self._part_size)
            self._cur = None

    async def _wait_parts(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _refuse(self, message: str) -> NoReturn:
        # A refused write leaves a hole or a conflict in the file: the upload can no longer
        # produce the client's bytes, so it is spoiled for good and its close will fail too
        # (otherwise a client that gives up and closes would land a truncated object).
        self._refused = message
        raise UploadError(message)

    def _raise_if_failed(self) -> None:
        if self._refused is not None:
            raise UploadError(f"an earlier write was refused: {self._refused}")
        if self._failure is not None:
            raise UploadError(f"S3 refused part of the upload: {self._failure}")
