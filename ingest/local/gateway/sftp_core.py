"""What every SFTP request handler of a session shares: the user's root, the one path
mapping with its refusal log line, blocking S3 calls on worker threads, and the common
fields of Transfer's events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import asyncssh

from ingest.local.gateway import store
from ingest.local.gateway.audit import iso_now
from ingest.local.gateway.context import Services, Session
from ingest.local.gateway.paths import PathRefused, ResolvedPath, resolve

T = TypeVar("T")


class SFTPSessionCore(asyncssh.SFTPServer):
    """The base of :class:`ingest.local.gateway.server.GatewaySFTPServer`."""

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
