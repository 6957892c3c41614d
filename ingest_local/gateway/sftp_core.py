"""What every SFTP request handler of a session shares: the user's root, the one path
mapping with its refusal log line, the check that the user may still act, blocking S3
calls on worker threads, and the common fields of Transfer's events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import asyncssh
from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.publisher import iso_now
from ingest_local.gateway import store
from ingest_local.gateway.context import Services, Session
from ingest_local.gateway.paths import DELETE, WRITE, PathRefused, ResolvedPath, resolve
from ingest_local.gateway.users import describe_user, revoked

T = TypeVar("T")


class SFTPSessionCore(asyncssh.SFTPServer):
    """The base of :class:`ingest_local.gateway.server.GatewaySFTPServer`."""

    def __init__(self, chan: Any, services: Services, session: Session) -> None:
        super().__init__(chan)
        assert session.user is not None
        self._svc = services
        self._session = session
        self._root = session.user.root
        self._namespace = session.user.namespace

    # --- paths and logging -----------------------------------------------------------------

    def _resolve(self, path: bytes, operation: str) -> ResolvedPath:
        try:
            return resolve(self._namespace, path)
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
        """A blocking call of this session, through the gateway's bridge."""
        try:
            return await self._svc.bridge.run(fn, *args)
        finally:
            self._session.touch()  # a slow S3 call is not idleness

    async def _authorized(self, path: bytes, operation: str, *needs: str) -> ResolvedPath:
        """``resolve`` the path, :meth:`_check_access`, then check that the user's policy
        allows the object actions ``needs`` there (:meth:`_permit`)."""
        target = self._resolve(path, operation)
        await self._check_access()
        self._permit(target, operation, *needs)
        return target

    def _permit(self, target: ResolvedPath, operation: str, *needs: str) -> None:
        """Refuse (``SFTPPermissionDenied``, and an ``ERROR`` line) an operation that needs
        an object action the user's session policy does not allow under ``target``'s
        mapping: every write under the read-only ``/receipts``."""
        missing = [action for action in needs if not target.allows(action)]
        if not missing:
            return
        where = target.mount.logical if target.mount else "/"
        message = (
            f"permission denied: {where} is read-only"
            if not target.allows(WRITE) and not target.allows(DELETE)
            else f"permission denied: {missing[0]} is not allowed under {where}"
        )
        self._log("ERROR", path=target.physical, operation=operation, message=message)
        raise asyncssh.SFTPPermissionDenied(message)

    async def _check_access(self) -> None:
        """Refuse this request, and end every session of the user, if the partner was
        removed, or the key this session logged in with, or its home directory changed.

        One ``describe_user`` per request that names a path (open, close of an upload,
        stat, list, mkdir, rmdir, remove, rename, setstat): those make S3 calls anyway, so
        the check at most doubles their API calls; reads and writes on open files, the data
        path, are never checked. If the Transfer API cannot answer, the request fails
        (closed, not open)."""
        reason = await self._revocation()
        if reason:
            self._revoke(reason)

    async def _revocation(self) -> str:
        """Why this session may no longer act ("" if it may); SFTPFailure if unknown."""
        user = self._session.user
        assert user is not None
        svc = self._svc
        try:
            now = await self._io(describe_user, svc.transfer, svc.server_id, svc.bucket, user.name)
        except (KeyError, ValueError) as exc:
            return f"access revoked: the user cannot be served any more: {exc}"
        except (ClientError, BotoCoreError) as exc:
            message = f"cannot confirm the user's access right now: {exc}"
            self._log("ERROR", message=message)
            raise asyncssh.SFTPFailure(message) from exc
        reason = revoked(user, self._session.key_data, now)
        return f"access revoked: {reason}" if reason else ""

    def _revoke(self, reason: str) -> NoReturn:
        """End the user's sessions (after this reply) and refuse the request."""
        assert self._session.user is not None
        self._svc.end_sessions(self._session.user.name, reason)
        raise asyncssh.SFTPPermissionDenied(reason)

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
