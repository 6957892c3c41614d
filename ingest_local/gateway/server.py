"""The SFTP subsystem: an ``asyncssh.SFTPServer`` over the landing bucket.

Every client path goes through :func:`ingest_local.gateway.paths.resolve`; refusals are
``SFTPPermissionDenied`` and are logged. Files being written stream to S3 through
:class:`StreamingUpload`; the client's close returns only once the object exists, and an
upload that never gets its close (disconnect, kill) is aborted and ends with Transfer's
``SFTP Server File Upload Failed`` event. As in AWS, that event is what records it PARTIAL
in the ledger (``UploadEventsFunction``); the gateway itself never writes the ledger.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import asyncssh
from asyncssh import FXF_APPEND, FXF_CREAT, FXF_EXCL, FXF_TRUNC, FXF_WRITE

from ingest.adapters.publisher import iso_now
from ingest_local.gateway import store
from ingest_local.gateway.context import Services, Session
from ingest_local.gateway.handles import FILE_MODE, DownloadHandle, UploadHandle
from ingest_local.gateway.namespace import NamespaceServer
from ingest_local.gateway.paths import READ, WRITE, ResolvedPath
from ingest_local.gateway.streaming import StreamingUpload, UploadError


class GatewaySFTPServer(NamespaceServer):
    """One SFTP session of an authenticated Transfer user."""

    def __init__(self, chan: Any, services: Services, session: Session) -> None:
        super().__init__(chan, services, session)
        self._open_handles = 0

    # --- files -----------------------------------------------------------------------------

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        """Open for reading (ranged GETs) or for writing (a streaming upload), at most
        ``max_handles_per_session`` at a time."""
        writes = pflags & (FXF_WRITE | FXF_CREAT | FXF_TRUNC | FXF_APPEND)
        target = await self._authorized(path, "OPEN", WRITE if writes else READ)
        limit = self._svc.limits.max_handles_per_session
        if self._open_handles >= limit:
            message = f"too many open files: this session already has {limit} (the limit)"
            self._log("ERROR", path=target.physical, operation="OPEN", message=message)
            raise asyncssh.SFTPFailure(message)
        handle = await self._open(target, pflags)
        self._open_handles += 1
        return handle

    async def _open(self, target: ResolvedPath, pflags: int) -> UploadHandle | DownloadHandle:
        if pflags & (FXF_WRITE | FXF_CREAT | FXF_APPEND) and await self._opens_upload(
            target, pflags
        ):
            return self._open_upload(target, pflags)
        entry = await self._lookup(target)
        if entry is None:
            raise asyncssh.SFTPNoSuchFile("no such file")
        if entry.is_dir:
            raise asyncssh.SFTPFailure("is a directory")
        self._log("OPEN", path=target.physical, mode="READ")
        return DownloadHandle(target, entry.size)

    async def _opens_upload(self, target: ResolvedPath, pflags: int) -> bool:
        """Whether a write or create open starts an upload (False: it is a plain read).

        An upload replaces the object whole at close, so a write open without TRUNC on an
        existing file (paramiko's ``r+``, a resume) would turn "change some bytes" into
        "replace the file with just those bytes": refused instead, leaving the file as it
        was. CREAT|TRUNC (``put``, ``w``, WinSCP, FileZilla) needs no lookup. paramiko's
        ``x`` sends CREAT|EXCL without WRITE: it creates a new file, or fails if one exists.
        """
        if pflags & FXF_APPEND:
            raise asyncssh.SFTPOpUnsupported("appending is not supported: S3 objects are immutable")
        if target.is_root:
            raise asyncssh.SFTPFailure("is a directory")
        if pflags & (FXF_WRITE | FXF_CREAT | FXF_TRUNC | FXF_EXCL) == (
            FXF_WRITE | FXF_CREAT | FXF_TRUNC
        ):
            return True
        exists = await self._io(store.head_file, self._svc.s3, self._root.bucket, target.key)
        if exists is None:
            if not pflags & FXF_CREAT:
                raise asyncssh.SFTPNoSuchFile("no such file")
            return True  # a fresh create
        if pflags & FXF_EXCL and pflags & FXF_CREAT:
            raise asyncssh.SFTPFailure("file already exists")
        if not pflags & FXF_WRITE:
            return False  # CREAT on an existing file, for reading: just a read
        if not pflags & FXF_TRUNC:
            message = (
                "opening an existing file for writing without truncating it is not supported: "
                "S3 objects are replaced whole, not modified in place (open with truncate, "
                "as put does, to replace the file)"
            )
            self._log("ERROR", path=target.physical, operation="OPEN", message=message)
            raise asyncssh.SFTPOpUnsupported(message)
        return True

    def _open_upload(self, target: ResolvedPath, pflags: int) -> UploadHandle:
        limits = self._svc.limits
        upload = StreamingUpload(
            self._svc.s3,
            self._root.bucket,
            target.key,
            bridge=self._svc.bridge,
            part_size=limits.part_size,
            max_in_flight=limits.parts_in_flight,
            max_ahead=limits.max_ahead,
            budget=self._svc.buffers,
        )
        flags = ((FXF_CREAT, "CREATE"), (FXF_TRUNC, "TRUNCATE"), (FXF_WRITE, "WRITE"))
        mode = "|".join(n for f, n in flags if pflags & f)
        self._log("OPEN", path=target.physical, mode=mode)
        handle = UploadHandle(target, upload, iso_now())
        self._svc.open_uploads.add(handle)
        return handle

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        """Hand the bytes to the streaming upload (which may wait: that is backpressure)."""
        if not isinstance(file_obj, UploadHandle):
            raise asyncssh.SFTPPermissionDenied("file not opened for writing")
        try:
            await file_obj.upload.write(offset, data)
        except UploadError as exc:
            raise asyncssh.SFTPFailure(str(exc)) from exc
        return len(data)

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        """Serve a read from the cached block, fetching the next block when needed."""
        if not isinstance(file_obj, DownloadHandle):
            raise asyncssh.SFTPPermissionDenied("file not opened for reading")
        key = file_obj.path.key

        async def fetch(start: int, length: int) -> bytes:
            return await self._io(
                store.read_range, self._svc.s3, self._root.bucket, key, start, length
            )

        return await file_obj.read(offset, size, fetch, self._svc.buffers)

    def close(self, file_obj: object) -> Any:
        """Finish a handle. A close the client asked for completes the upload; the close
        asyncssh makes for handles left open when the session ends aborts it."""
        # asyncssh calls close() from two places: the FXP_CLOSE handler, and its session
        # cleanup for every handle still open when the channel ends (EOF, kill, network).
        # The public API does not say which, so look at the caller: only the first is a
        # client's "I am done"; the second is exactly Transfer's PARTIAL_CLOSE case.
        session_ended = sys._getframe(1).f_code.co_name == "_cleanup"
        return self._close(file_obj, session_ended=session_ended)

    async def _close(self, file_obj: object, *, session_ended: bool) -> None:
        if not isinstance(file_obj, UploadHandle | DownloadHandle):
            return
        self._open_handles -= 1
        if isinstance(file_obj, DownloadHandle):
            file_obj.drop_block(self._svc.buffers)
            self._log("CLOSE", path=file_obj.path.physical, **{"bytes-out": file_obj.bytes_out})
            return
        try:
            await self._finish_upload(file_obj, session_ended=session_ended)
        finally:
            self._svc.open_uploads.discard(file_obj)

    async def _finish_upload(self, file_obj: UploadHandle, *, session_ended: bool) -> None:
        upload = file_obj.upload
        if session_ended:
            await self._fail_upload(file_obj, "the session ended before the client closed the file")
            return
        try:
            revoked = await self._revocation()  # a removed partner's upload does not land
        except asyncssh.SFTPError as exc:
            await self._fail_upload(file_obj, exc.reason)
            raise
        if revoked:
            await self._fail_upload(file_obj, revoked)
            self._revoke(revoked)
        try:
            result = await upload.complete()
            self._session.touch()
        except Exception as exc:
            reason = f"S3 did not accept the file: {exc}"
            await self._fail_upload(file_obj, reason)
            raise asyncssh.SFTPFailure(reason) from exc
        self._log("CLOSE", path=file_obj.path.physical, **{"bytes-in": result.size})
        self._svc.audit.upload_event(
            completed=True,
            detail={
                **self._event_detail(file_obj, result.size),
                "status-code": "COMPLETED",
                "etag": result.etag.strip('"'),
            },
        )

    async def _fail_upload(self, handle: UploadHandle, reason: str) -> None:
        upload = handle.upload
        received = upload.bytes_received
        try:
            await upload.abort()
        except Exception as exc:  # the bucket's lifecycle rule reaps what abort could not
            reason += f" (abort failed: {exc})"
        self._log(
            "PARTIAL_CLOSE", path=handle.path.physical, message=reason, **{"bytes-in": received}
        )
        # The event is the only record, as Transfer's is in AWS: UploadEventsFunction turns it
        # into the ledger's PARTIAL. Writing the ledger here too recorded every cut-off twice.
        self._svc.audit.upload_event(
            completed=False,
            detail={
                **self._event_detail(handle, received),
                "status-code": "FAILED",
                "failure-code": "PARTIAL_UPLOAD",
                "failure-message": reason,
            },
        )

    def _event_detail(self, handle: UploadHandle, size: int) -> dict[str, Any]:
        return {
            **self._session_detail(handle.started),
            "bytes": size,
            "file-path": handle.path.physical,
        }

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        if isinstance(file_obj, UploadHandle):
            size = file_obj.upload.high_water
            now = int(time.time())
            return asyncssh.SFTPAttrs(
                permissions=FILE_MODE, size=size, uid=0, gid=0, atime=now, mtime=now
            )
        if isinstance(file_obj, DownloadHandle):
            return await self.stat(file_obj.path.logical.encode())
        raise asyncssh.SFTPInvalidHandle("invalid handle")

    def fsync(self, file_obj: object) -> None:
        """Nothing to do: data is durable once the close has returned."""
