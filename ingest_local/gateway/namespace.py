"""SFTP requests on names: stat, list, mkdir, rmdir, remove, rename (with Transfer's
rename events), and what S3 cannot do (links, statvfs; setstat as a no-op)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncssh

from ingest.adapters.publisher import iso_now
from ingest_local.gateway import store
from ingest_local.gateway.handles import DownloadHandle, UploadHandle, attrs_of
from ingest_local.gateway.paths import DELETE, READ, WRITE, PathRefused, ResolvedPath
from ingest_local.gateway.sftp_core import SFTPSessionCore

#: ``failure-code`` of a Rename Failed event, by the SFTP status the client was given.
RENAME_FAILURE_CODES = {
    asyncssh.FX_NO_SUCH_FILE: "FILE_NOT_FOUND",
    asyncssh.FX_PERMISSION_DENIED: "PERMISSION_DENIED",
    asyncssh.FX_OP_UNSUPPORTED: "OPERATION_NOT_SUPPORTED",
    asyncssh.FX_FAILURE: "FAILURE",
}


class NamespaceServer(SFTPSessionCore):
    """Names and directories over S3, as Transfer Family has them."""

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        entry = await self._lookup(await self._authorized(path, "STAT"))
        if entry is None:
            raise asyncssh.SFTPNoSuchFile("no such file or directory")
        return attrs_of(entry)

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return await self.stat(path)  # there are no links on S3

    def realpath(self, path: bytes) -> bytes:
        return self._resolve(path, "REALPATH").logical.encode()

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        target = await self._authorized(path, "LIST")
        entry = await self._lookup(target)
        if entry is None:
            raise asyncssh.SFTPNoSuchFile("no such directory")
        if not entry.is_dir:
            raise asyncssh.SFTPNoSuchFile("not a directory")
        for dot in (b".", b".."):
            yield asyncssh.SFTPName(dot, attrs=attrs_of(None, is_dir=True))
        # The mappings mounted on this directory (/receipts in /) are directories in it, and
        # hide what the home holds under the same names, as Transfer's logical directories do.
        mounted = self._mounted_in(target)
        for name in mounted:
            yield asyncssh.SFTPName(name.encode(), attrs=attrs_of(None, is_dir=True))
        pages = store.list_dir(self._svc.s3, self._root.bucket, target.dir_prefix)
        while (page := await self._io(next, pages, None)) is not None:
            for item in page:
                if item.name not in mounted:
                    yield asyncssh.SFTPName(item.name.encode(), attrs=attrs_of(item))

    def _mounted_in(self, target: ResolvedPath) -> list[str]:
        """Names of the mappings whose entry is directly inside ``target``'s directory."""
        view = self._session.user.view if self._session.user else None
        if view is None:
            return []
        here = (*target.entry, *target.parts)
        return [m.entry[-1] for m in view.mounts if m.entry[:-1] == here]

    async def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        target = await self._authorized(path, "MKDIR", WRITE)
        if await self._lookup(target) is not None:
            raise asyncssh.SFTPFailure("already exists")
        await self._io(store.make_dir, self._svc.s3, self._root.bucket, target.dir_prefix)
        self._log("MKDIR", path=target.physical)

    async def rmdir(self, path: bytes) -> None:
        target = await self._authorized(path, "RMDIR", DELETE)
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
        target = await self._authorized(path, "DELETE", DELETE)
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
        await self._check_access()
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
        self._permit(src, "RENAME", READ, DELETE)
        self._permit(dst, "RENAME", WRITE)
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

    async def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        """chmod/chown/utime: accepted and ignored (WinSCP and FileZilla send them)."""
        self._log("SETSTAT", path=(await self._authorized(path, "SETSTAT", WRITE)).physical)

    async def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        await self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        if isinstance(file_obj, UploadHandle | DownloadHandle):
            self._permit(file_obj.path, "SETSTAT", WRITE)
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
