"""The transfer engine: SFTP ↔ S3 streaming with resume, retries and bounded memory.

* Retrieve: the remote file is read in ``part_size`` pieces with asyncssh's pipelined reads
  (many SFTP read requests in flight) and each piece becomes one S3 multipart part, uploaded
  while the next piece is read. Nothing touches local disk; memory is at most
  ``(parts_in_flight + 1) x part_size`` per file. Files up to one part go up with a single
  ``PutObject``. Either way the object only becomes visible when it is complete
  (``CompleteMultipartUpload`` / ``PutObject``), so the S3 trigger never sees half a file.
* A dropped connection is retried on a fresh connection with the shared backoff
  (:data:`CONNECTION_RETRIES`, full jitter), and the retrieve resumes at the first byte not
  yet in S3, provided the remote file's size and mtime are unchanged (else it starts over).
  The byte count is verified against the remote size before completing and against the
  object's ``ContentLength`` after.
* Send: the S3 object (pinned to its ETag) is streamed into ``.<name>.ingest-part`` on the
  server, its size checked, then renamed into place, so the partner never sees half a file
  either. A dropped send resumes from what reached the server, less the last pipeline window;
  a send that finally fails removes its temp file.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import asyncssh
from botocore.exceptions import ClientError
from msgspec import Struct

from connectors.errors import (
    FileTransferError,
    PermanentFileTransferError,
    RetryableFileTransferError,
)
from connectors.listing import Listing, ListingEntry
from connectors.sftp import Session, SessionPool, classify
from ingest.adapters.multipart import MIB, S3_MIN_PART_SIZE, MultipartUpload
from ingest.adapters.sdk import error_code, is_not_found
from ingest.shared.aio import Bridge
from ingest.shared.backoff import Backoff

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

T = TypeVar("T")
Progress = Callable[[int, int], None]

#: S3's multipart minimum is 5 MiB; 8 MiB parts (4 in flight) is what bench/connector.py
#: found best, the same part size as s3transfer's default.
DEFAULT_PART_SIZE = 8 * MIB
#: SFTP read/write request size. OpenSSH serves up to 255 KiB per read; asyncssh keeps up
#: to ``SFTP_MAX_REQUESTS`` of them in flight.
SFTP_BLOCK_SIZE = 255 * 1024
SFTP_MAX_REQUESTS = 64
#: A retried send rewrites the last pipeline window of what reached the server.
SEND_RESUME_REWIND = SFTP_MAX_REQUESTS * SFTP_BLOCK_SIZE


#: Connection-level failures: 4 attempts in all, up to 1, 2, 4 s before the retries.
CONNECTION_RETRIES = Backoff(attempts=4, base=0.5, cap=8.0)


class _Send(Struct):
    """What survives reconnects of one send."""

    bucket: str
    key: str
    etag: str  # every read is pinned to this version of the object
    size: int
    temp_written: bool = False  # this send created the temp file on the server
    resumable: bool = True


class _Retrieval(Struct):
    """What survives reconnects: the open multipart upload and the byte it resumes at."""

    upload: MultipartUpload
    offset: int = 0
    in_parts: bool = False  # False: the file went up whole with one PutObject


class TransferEngine:
    """SFTP ↔ S3 operations for one connector, over a shared :class:`SessionPool`."""

    def __init__(
        self,
        pool: SessionPool,
        s3: S3Client,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        parts_in_flight: int = 4,
        retry: Backoff = CONNECTION_RETRIES,
    ) -> None:
        if part_size < S3_MIN_PART_SIZE:
            raise ValueError("part_size must be at least 5 MiB (S3's multipart minimum)")
        self.pool = pool
        self.s3 = s3
        self.part_size = part_size
        self.parts_in_flight = max(1, parts_in_flight)
        self.retry = retry
        # boto3 is blocking: S3 calls go through a bridge so SFTP reads keep flowing. Its data
        # calls are bounded by the pool: every file under way has parts_in_flight at most.
        files = pool.max_connections * pool.files_per_connection
        self._bridge = Bridge(files * self.parts_in_flight, name="connector-s3")

    async def close(self) -> None:
        """Close the pool's sessions and the engine's threads."""
        await self.pool.close()
        self._bridge.close(wait=False)

    async def _with_retries(self, op: Callable[[Session], Awaitable[T]], *, missing_code: str) -> T:
        attempt = 0
        while True:
            try:
                async with self.pool.session() as session:
                    return await op(session)
            except FileTransferError as exc:
                failure = exc
            except (asyncssh.Error, OSError, TimeoutError) as exc:
                failure = classify(exc, missing_code=missing_code)
            if not isinstance(failure, RetryableFileTransferError):
                raise failure
            attempt += 1
            if attempt >= self.retry.attempts:
                raise failure
            await asyncio.sleep(self.retry.delay(attempt))

    # --- retrieve ------------------------------------------------------------------------

    async def retrieve(
        self, remote_path: str, bucket: str, key: str, progress: Progress | None = None
    ) -> int:
        """Copy one remote file to ``s3://bucket/key``; returns the byte count."""
        job = _Retrieval(MultipartUpload(self.s3, bucket, key, bridge=self._bridge))
        state: dict[str, Any] = {}

        async def attempt(session: Session) -> int:
            return await self._retrieve_once(session, remote_path, job, state, progress)

        try:
            size = await self._with_retries(attempt, missing_code="RETRIEVE_FILE_NOT_FOUND")
        except BaseException:
            await self._abort(job.upload)
            raise
        if not job.in_parts:
            return size  # one PutObject of exactly ``size`` bytes, checked before the put
        head = await self._bridge.run(self.s3.head_object, Bucket=bucket, Key=key)
        if head["ContentLength"] != size:
            # Cannot happen unless S3 lost bytes; don't leave a wrong object to be ingested.
            await self._bridge.run(self.s3.delete_object, Bucket=bucket, Key=key)
            raise PermanentFileTransferError(
                "SIZE_MISMATCH",
                f"s3://{bucket}/{key} has {head['ContentLength']} bytes, the remote file {size}",
            )
        return size

    async def _retrieve_once(
        self,
        session: Session,
        remote_path: str,
        job: _Retrieval,
        state: dict[str, Any],
        progress: Progress | None,
    ) -> int:
        timeout = self.pool.endpoint.io_timeout
        attrs = await asyncio.wait_for(session.sftp.stat(remote_path), timeout)
        if attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
            raise PermanentFileTransferError(
                "RETRIEVE_FILE_NOT_FOUND", f"{remote_path} is a directory"
            )
        size, mtime = int(attrs.size or 0), attrs.mtime
        if state and (state["size"], state["mtime"]) != (size, mtime):
            # The file changed since the first attempt: the bytes already sent are stale.
            await self._abort(job.upload)
            job.offset = 0
        state.update(size=size, mtime=mtime)
        async with session.sftp.open(
            remote_path, "rb", block_size=SFTP_BLOCK_SIZE, max_requests=SFTP_MAX_REQUESTS
        ) as remote:
            if size <= self.part_size and not job.upload.started:
                data = cast(bytes, await asyncio.wait_for(remote.read(size + 1, 0), timeout))
                self._check_length(remote_path, len(data), size)
                await job.upload.put_object(data)
                if progress:
                    progress(size, size)
                return size
            job.in_parts = True
            await self._stream_parts(remote, remote_path, size, job, progress)
            extra = await asyncio.wait_for(remote.read(1, size), timeout)
            self._check_length(remote_path, size + len(extra), size)
        await job.upload.complete()
        return size

    async def _stream_parts(
        self,
        remote: asyncssh.SFTPClientFile,
        remote_path: str,
        size: int,
        job: _Retrieval,
        progress: Progress | None,
    ) -> None:
        upload = job.upload
        await upload.start()
        pending: set[asyncio.Task[None]] = set()
        timeout = self.pool.endpoint.io_timeout
        offset = job.offset
        try:
            while offset < size:
                want = min(self.part_size, size - offset)
                data = cast(bytes, await asyncio.wait_for(remote.read(want, offset), timeout))
                self._check_length(remote_path, offset + len(data), offset + want, early=True)
                number = offset // self.part_size + 1
                pending.add(asyncio.create_task(upload.upload_part(number, data)))
                offset += want
                if len(pending) >= self.parts_in_flight:
                    done, pending = await asyncio.wait(pending, return_when="FIRST_COMPLETED")
                    for t in done:
                        t.result()
                if progress:
                    progress(offset, size)
            if pending:
                await asyncio.gather(*pending)
                pending = set()
        finally:
            # Let part uploads already under way finish: they don't need the SFTP
            # connection, and every part that lands moves the resume point forward.
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            # Resume after the longest run of parts that made it to S3.
            done_parts = upload.contiguous_parts()
            upload.keep_parts(done_parts)
            job.offset = done_parts * self.part_size

    @staticmethod
    def _check_length(path: str, got: int, expected: int, *, early: bool = False) -> None:
        if got < expected and early:
            raise RetryableFileTransferError(
                "SIZE_MISMATCH", f"{path} ended at byte {got}, expected {expected}"
            )
        if got != expected:
            raise RetryableFileTransferError(
                "SIZE_MISMATCH",
                f"{path} has {got} bytes but was {expected} bytes when the transfer started",
            )

    @staticmethod
    async def _abort(upload: MultipartUpload) -> None:
        # if this fails, the bucket's lifecycle rule aborts the leftover after a day
        with contextlib.suppress(ClientError):
            await upload.abort()

    # --- send ----------------------------------------------------------------------------

    async def send(
        self, bucket: str, key: str, remote_path: str, progress: Progress | None = None
    ) -> int:
        """Copy ``s3://bucket/key`` to ``remote_path``; returns the byte count."""
        try:
            head = await self._bridge.run(self.s3.head_object, Bucket=bucket, Key=key)
        except ClientError as exc:
            if is_not_found(exc):
                raise PermanentFileTransferError(
                    "SEND_FILE_NOT_FOUND", f"s3://{bucket}/{key} does not exist"
                ) from exc
            raise PermanentFileTransferError("S3_ERROR", str(exc)) from exc
        job = _Send(bucket=bucket, key=key, etag=str(head["ETag"]), size=int(head["ContentLength"]))
        directory, name = posixpath.split(remote_path)
        temp = posixpath.join(directory, f".{name}.ingest-part")

        async def attempt(session: Session) -> int:
            return await self._send_once(session, job, temp, remote_path, progress)

        try:
            return await self._with_retries(attempt, missing_code="REMOTE_DIRECTORY_NOT_FOUND")
        except Exception:
            if job.temp_written:  # give up: leave no partial file on the partner's server
                # best effort: the server may be unreachable, and the send's own failure is
                # what gets reported
                with contextlib.suppress(FileTransferError, asyncssh.Error, OSError, TimeoutError):
                    async with self.pool.session() as session:
                        await asyncio.wait_for(session.sftp.remove(temp), 5)
            raise

    async def _send_once(
        self,
        session: Session,
        job: _Send,
        temp: str,
        remote_path: str,
        progress: Progress | None,
    ) -> int:
        timeout = self.pool.endpoint.io_timeout
        size = job.size
        sent = await self._resume_point(session, job, temp)
        get: dict[str, Any] = {"Bucket": job.bucket, "Key": job.key, "IfMatch": job.etag}
        if sent:
            get["Range"] = f"bytes={sent}-"
        try:
            body = (await self._bridge.run(self.s3.get_object, **get))["Body"]
        except ClientError as exc:
            code = error_code(exc)
            failure = {
                "NoSuchKey": "SEND_FILE_NOT_FOUND",
                "404": "SEND_FILE_NOT_FOUND",
                "PreconditionFailed": "SEND_FILE_CHANGED",  # replaced since the send began
                "412": "SEND_FILE_CHANGED",
            }.get(code, "S3_ERROR")
            where = f"s3://{job.bucket}/{job.key}"
            raise PermanentFileTransferError(failure, f"{where}: {exc}") from exc
        try:
            async with session.sftp.open(
                temp,
                "r+b" if sent else "wb",
                block_size=SFTP_BLOCK_SIZE,
                max_requests=SFTP_MAX_REQUESTS,
            ) as remote:
                job.temp_written = True
                chunk = await self._bridge.run(body.read, amt=self.part_size)
                while chunk:
                    # Read the next piece from S3 while this one is written over SFTP.
                    nxt = asyncio.ensure_future(self._bridge.run(body.read, amt=self.part_size))
                    try:
                        await asyncio.wait_for(remote.write(chunk, sent), timeout)
                    except BaseException:
                        nxt.cancel()
                        raise
                    sent += len(chunk)
                    if progress:
                        progress(sent, size)
                    chunk = await nxt
            attrs = await asyncio.wait_for(session.sftp.stat(temp), timeout)
            if sent != size or attrs.size != size:
                job.resumable = False  # the bytes on the server cannot be trusted: start over
                raise RetryableFileTransferError(
                    "SIZE_MISMATCH", f"{remote_path}: wrote {attrs.size} of {size} bytes"
                )
            await self._rename(session, temp, remote_path)
        finally:
            body.close()
        if progress and size == 0:
            progress(0, 0)
        return size

    @staticmethod
    async def _resume_point(session: Session, job: _Send, temp: str) -> int:
        """Where a retried send continues: the temp file this send wrote, less the last
        pipeline window (writes in flight when the link dropped may have left a hole there,
        none can be earlier). The first attempt, or one after a size mismatch, starts at 0."""
        if not (job.temp_written and job.resumable):
            job.resumable = True
            return 0
        try:
            attrs = await session.sftp.stat(temp)
        except asyncssh.SFTPNoSuchFile:
            return 0
        return max(0, min(int(attrs.size or 0), job.size) - SEND_RESUME_REWIND)

    @staticmethod
    async def _rename(session: Session, temp: str, final: str) -> None:
        try:
            # replaces ``final`` atomically where the server has the OpenSSH extension
            await session.sftp.posix_rename(temp, final)
            return
        except asyncssh.SFTPOpUnsupported:
            pass
        # the target may not exist (or the connection may already be gone)
        with contextlib.suppress(asyncssh.Error, OSError, TimeoutError):
            await session.sftp.remove(final)
        await session.sftp.rename(temp, final)

    # --- listing and remote file operations ---------------------------------------------

    async def list_directory(self, remote_dir: str, max_items: int) -> Listing:
        """One level of ``remote_dir``: files with size and mtime, and subdirectories."""

        async def attempt(session: Session) -> Listing:
            names = await asyncio.wait_for(
                session.sftp.readdir(remote_dir), self.pool.endpoint.io_timeout
            )
            listing = Listing()
            for entry in sorted(names, key=lambda n: str(n.filename)):
                name = str(entry.filename)
                if name in (".", ".."):
                    continue
                if len(listing.files) + len(listing.paths) >= max_items:
                    listing.truncated = True
                    break
                path = posixpath.join(remote_dir, name)
                if entry.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
                    listing.paths.append(path)
                else:
                    listing.files.append(
                        ListingEntry(
                            path=path, is_dir=False, size=entry.attrs.size, mtime=entry.attrs.mtime
                        )
                    )
            return listing

        return await self._with_retries(attempt, missing_code="REMOTE_DIRECTORY_NOT_FOUND")

    async def remote_delete(self, path: str) -> None:
        """Delete a remote file (an after-success action)."""

        async def attempt(session: Session) -> None:
            await session.sftp.remove(path)

        await self._with_retries(attempt, missing_code="REMOTE_FILE_NOT_FOUND")

    async def remote_move(self, source: str, target: str) -> None:
        """Move a remote file (an after-success action), replacing ``target``."""

        async def attempt(session: Session) -> None:
            await self._rename(session, source, target)

        await self._with_retries(attempt, missing_code="REMOTE_FILE_NOT_FOUND")
