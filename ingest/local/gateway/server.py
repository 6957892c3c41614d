"""The SFTP subsystem: an ``asyncssh.SFTPServer`` over the landing bucket.

Every client path goes through :func:`ingest.local.gateway.paths.resolve`; refusals are
``SFTPPermissionDenied`` and are logged. Files being written stream to S3 through
:class:`StreamingUpload`; the client's close returns only once the object exists, and an
upload that never gets its close (disconnect, kill) is aborted and recorded as PARTIAL.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import asyncssh
from asyncssh import FXF_APPEND, FXF_CREAT, FXF_EXCL, FXF_TRUNC, FXF_WRITE

from ingest.ledger import FileStatus
from ingest.local.gateway import store
from ingest.local.gateway.audit import iso_now
from ingest.local.gateway.context import Services, Session
from ingest.local.gateway.handles import (
    FILE_MODE,
    READ_BLOCK,
    DownloadHandle,
    UploadHandle,
    attrs_of,
)
from ingest.local.gateway.paths import PathRefused, ResolvedPath, resolve
from ingest.local.gateway.uploads import StreamingUpload, UploadError

T = TypeVar("T")

#: ``failure-code`` of a Rename Failed event, by the SFTP status the client was given.
RENAME_FAILURE_CODES = {
    asyncssh.FX_NO_SUCH_FILE: "FILE_NOT_FOUND",
    asyncssh.FX_PERMISSION_DENIED: "PERMISSION_DENIED",
    asyncssh.FX_OP_UNSUPPORTED: "OPERATION_NOT_SUPPORTED",
    asyncssh.FX_FAILURE: "FAILURE",
}


class GatewaySFTPServer(asyncssh.SFTPServer):
    """One SFTP session of an authenticated Transfer user."""

    def __init__(self, chan: Any, services: Services, session: Session) -> None:
        super().__init__(chan)
        assert session.user is not None
        self._svc = services
        self._session = session
        self._root = session.user.root

    # --- paths and logging -----------------------------------------------------------------

    def _resolve(self, path: bytes, operation: str) -> ResolvedPath:
        try:
            return resolve(self._root, path)
        except PathRefused as exc:
            self._log(
                "ERROR",
                path=path.decode("utf-8", "backslashreplace"),
                operation=operation,
                message=f"permission denied: {exc.reason}",
            )
            raise

    def _log(self, activity: str, **fields: Any) -> None:
        self._svc.audit.log(
            self._session.stream,
            **{
                "activity-type": activity,
                "session-id": self._session.session_id,
                "user": self._session.user.name if self._session.user else None,
            },
            **fields,
        )

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._svc.executor, fn, *args)

    async def _lookup(self, path: ResolvedPath) -> store.Entry | None:
        """The file or directory at ``path``, or None."""
        if path.is_root:
            return store.Entry("", True)
        entry = await self._io(store.head_file, self._svc.s3, self._root.bucket, path.key)
        if entry is not None:
            return entry
        exists, _ = await self._io(
            store.dir_state, self._svc.s3, self._root.bucket, path.dir_prefix
        )
        return store.Entry(path.name, True) if exists else None

    # --- files -----------------------------------------------------------------------------

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        """Open for reading (ranged GETs) or for writing (a streaming upload)."""
        target = self._resolve(path, "OPEN")
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
            executor=self._svc.executor,
            part_size=limits.part_size,
            max_in_flight=limits.parts_in_flight,
            max_ahead=limits.max_ahead,
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
        handle = file_obj
        if offset >= handle.size:
            return b""  # asyncssh turns an empty read into EOF
        async with handle.lock:
            end = handle.block_start + len(handle.block)
            if not handle.block_start <= offset < end or offset + size > end < handle.size:
                handle.block_start = offset
                handle.block = await self._io(
                    store.read_range,
                    self._svc.s3,
                    self._root.bucket,
                    handle.path.key,
                    offset,
                    max(size, READ_BLOCK),
                )
            start = offset - handle.block_start
            data = handle.block[start : start + size]
        handle.bytes_out += len(data)
        return data

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
        if isinstance(file_obj, DownloadHandle):
            self._log("CLOSE", path=file_obj.path.physical, **{"bytes-out": file_obj.bytes_out})
            return
        if not isinstance(file_obj, UploadHandle):
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
            result = await upload.complete()
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
        await self._io(
            lambda: self._svc.ledger.record_terminal(
                handle.path.key, FileStatus.PARTIAL, reason=reason, size=received
            )
        )
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

    def _session_detail(self, started: str) -> dict[str, Any]:
        """The detail fields every Transfer file event of this session carries."""
        return {
            "protocol": "SFTP",
            "client-ip": self._session.source_ip,
            "server-id": self._svc.server_id,
            "username": self._session.user.name if self._session.user else None,
            "session-id": self._session.session_id,
            "start-timestamp": started,
            "end-timestamp": iso_now(),
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

    # --- names and directories -------------------------------------------------------------

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        entry = await self._lookup(self._resolve(path, "STAT"))
        if entry is None:
            raise asyncssh.SFTPNoSuchFile("no such file or directory")
        return attrs_of(entry)

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return await self.stat(path)  # there are no links on S3

    def realpath(self, path: bytes) -> bytes:
        return self._resolve(path, "REALPATH").logical.encode()

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        target = self._resolve(path, "LIST")
        entry = await self._lookup(target)
        if entry is None:
            raise asyncssh.SFTPNoSuchFile("no such directory")
        if not entry.is_dir:
            raise asyncssh.SFTPNoSuchFile("not a directory")
        for dot in (b".", b".."):
            yield asyncssh.SFTPName(dot, attrs=attrs_of(None, is_dir=True))
        pages = store.list_dir(self._svc.s3, self._root.bucket, target.dir_prefix)
        while (page := await self._io(next, pages, None)) is not None:
            for item in page:
                yield asyncssh.SFTPName(item.name.encode(), attrs=attrs_of(item))

    async def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        target = self._resolve(path, "MKDIR")
        if await self._lookup(target) is not None:
            raise asyncssh.SFTPFailure("already exists")
        await self._io(store.make_dir, self._svc.s3, self._root.bucket, target.dir_prefix)
        self._log("MKDIR", path=target.physical)

    async def rmdir(self, path: bytes) -> None:
        target = self._resolve(path, "RMDIR")
        if target.is_root:
            raise PathRefused(path, "the root cannot be removed")
        exists, empty = await self._io(
            store.dir_state, self._svc.s3, self._root.bucket, target.dir_prefix
        )
        if not exists:
            raise asyncssh.SFTPNoSuchFile("no such directory")
        if not empty:
            raise asyncssh.SFTPFailure("directory not empty")
        await self._io(store.delete, self._svc.s3, self._root.bucket, target.dir_prefix)
        self._log("RMDIR", path=target.physical)

    async def remove(self, path: bytes) -> None:
        target = self._resolve(path, "DELETE")
        if (
            target.is_root
            or await self._io(store.head_file, self._svc.s3, self._root.bucket, target.key) is None
        ):
            raise asyncssh.SFTPNoSuchFile("no such file")
        await self._io(store.delete, self._svc.s3, self._root.bucket, target.key)
        self._log("DELETE", path=target.physical)

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self._rename(oldpath, newpath, overwrite=False)

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self._rename(oldpath, newpath, overwrite=True)

    async def _rename(self, oldpath: bytes, newpath: bytes, *, overwrite: bool) -> None:
        """Rename a file (copy + delete) and emit Transfer's Rename Completed|Failed event.

        Paths refused by :func:`resolve` get no event: they name no object of this user."""
        src = self._resolve(oldpath, "RENAME")
        dst = self._resolve(newpath, "RENAME")
        started = iso_now()
        detail = {"original-file-path": src.physical, "renamed-file-path": dst.physical}
        try:
            await self._move(src, dst, overwrite=overwrite)
        except Exception as exc:
            sftp_error = isinstance(exc, asyncssh.SFTPError)
            if isinstance(exc, asyncssh.SFTPError):
                code, message = RENAME_FAILURE_CODES.get(exc.code, "FAILURE"), exc.reason
            else:
                code, message = "S3_ERROR", f"S3 did not accept the rename: {exc}"
            failure = {"status-code": "FAILED", "failure-code": code, "failure-message": message}
            self._svc.audit.rename_event(
                completed=False, detail={**self._session_detail(started), **detail, **failure}
            )
            if sftp_error:
                raise
            raise asyncssh.SFTPFailure(message) from exc
        self._log("RENAME", path=src.physical, **{"new-path": dst.physical})
        self._svc.audit.rename_event(
            completed=True,
            detail={**self._session_detail(started), **detail, "status-code": "COMPLETED"},
        )

    async def _move(self, src: ResolvedPath, dst: ResolvedPath, *, overwrite: bool) -> None:
        if src.is_root or dst.is_root:
            raise PathRefused(src.logical.encode(), "the root cannot be renamed or replaced")
        entry = await self._lookup(src)
        if entry is None:
            raise asyncssh.SFTPNoSuchFile("no such file")
        if entry.is_dir:
            raise asyncssh.SFTPOpUnsupported("renaming directories is not supported on S3")
        if not overwrite and await self._lookup(dst) is not None:
            raise asyncssh.SFTPFailure("target already exists")
        await self._io(store.move, self._svc.s3, self._root.bucket, src.key, dst.key)

    # --- what S3 cannot do: accepted as no-ops, or refused ----------------------------------

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """chmod/chown/utime: accepted and ignored (WinSCP and FileZilla send them)."""
        self._log("SETSTAT", path=self._resolve(path, "SETSTAT").physical)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        if isinstance(file_obj, UploadHandle | DownloadHandle):
            self._log("SETSTAT", path=file_obj.path.physical)

    def _refuse_link(self, what: str, *paths: bytes) -> None:
        for path in paths:
            self._resolve(path, what)  # an escaping path is logged as such first
        self._log(
            "CREATE_SYMLINK" if what != "READLINK" else "ERROR",
            path=paths[-1].decode("utf-8", "backslashreplace"),
            message="permission denied: links are not supported",
        )
        raise asyncssh.SFTPPermissionDenied("links are not supported")

    def readlink(self, path: bytes) -> bytes:
        self._refuse_link("READLINK", path)
        return b""  # unreachable: _refuse_link always raises

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        self._refuse_link("SYMLINK", newpath)

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        self._refuse_link("LINK", newpath)

    def statvfs(self, path: bytes) -> Any:
        raise asyncssh.SFTPOpUnsupported("statvfs is not supported")

    def fstatvfs(self, file_obj: object) -> Any:
        raise asyncssh.SFTPOpUnsupported("statvfs is not supported")
