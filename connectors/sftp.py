"""SFTP sessions to a partner's server: verified connect, error mapping, a small pool.

Every connect goes through :func:`open_session`, which verifies the host key inside the
handshake (see :mod:`connectors.hostkeys`) before asyncssh offers any credential. asyncssh and
OS errors become :class:`~connectors.errors.FileTransferError` subclasses carrying AWS's
failure codes, so the service never has to know asyncssh's exception names.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
from msgspec import Struct, field

from connectors.config import Credentials
from connectors.errors import (
    FileTransferError,
    HostKeyMismatchError,
    PermanentFileTransferError,
    RetryableFileTransferError,
)
from connectors.hostkeys import (
    SCAN_ALGORITHMS,
    HostKeyPolicy,
    VerifyingClient,
    handshake_options,
)


class Endpoint(Struct, frozen=True):
    """Where and as whom to connect, and which host keys to trust."""

    host: str
    port: int
    credentials: Credentials
    policy: HostKeyPolicy
    connect_timeout: float = 15.0
    #: sessions never idle longer than this while waiting for the server (seconds).
    io_timeout: float = 60.0
    extra_options: dict[str, Any] = field(default_factory=dict)


class Session(Struct):
    """One SSH connection with its SFTP channel."""

    conn: asyncssh.SSHClientConnection
    sftp: asyncssh.SFTPClient
    host_key: asyncssh.SSHKey | None
    busy: int = 0
    broken: bool = False

    def close(self) -> None:
        """Close the connection without waiting (used on errors and at shutdown)."""
        self.sftp.exit()
        self.conn.close()


def classify(
    exc: BaseException, *, missing_code: str = "RETRIEVE_FILE_NOT_FOUND"
) -> FileTransferError:
    """Map an asyncssh / OS error to a failure with AWS's code. Unknown errors → INTERNAL."""
    if isinstance(exc, FileTransferError):
        return exc
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return PermanentFileTransferError(missing_code, str(exc) or "no such file")
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return PermanentFileTransferError("PERMISSION_DENIED", str(exc) or "permission denied")
    if isinstance(exc, asyncssh.PermissionDenied):
        return PermanentFileTransferError("AUTH_FAILURE", f"authentication failed: {exc}")
    if isinstance(exc, TimeoutError):
        return RetryableFileTransferError("TIMEOUT_ERROR", "the server did not answer in time")
    if isinstance(
        exc,
        asyncssh.DisconnectError
        | asyncssh.SFTPConnectionLost
        | asyncssh.SFTPNoConnection
        | asyncssh.ChannelOpenError
        | ConnectionError
        | OSError,
    ):
        return RetryableFileTransferError("CONNECTION_ERROR", f"connection failed: {exc}")
    if isinstance(exc, asyncssh.SFTPError):
        return PermanentFileTransferError("SFTP_ERROR", f"{type(exc).__name__}: {exc}")
    return PermanentFileTransferError("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")


async def open_session(endpoint: Endpoint) -> Session:
    """Connect, verify the host key in the handshake, authenticate, and start SFTP.

    When the trusted entries are fingerprints only, the key type is unknown and the server
    may first present a key of another type: the handshake is then retried once per other
    host key algorithm (each one verified before any credential is sent), the way
    ``ssh-keyscan`` asks for each key in turn.
    """
    try:
        return await _open_session(endpoint, None)
    except HostKeyMismatchError as first:
        if endpoint.policy.host_key_algorithms() is not None:
            raise
        presented = list(first.presented)
        for alg in SCAN_ALGORITHMS:
            try:
                return await _open_session(endpoint, [alg])
            except HostKeyMismatchError as exc:
                presented += [fp for fp in exc.presented if fp not in presented]
            except RetryableFileTransferError:
                continue  # the server has no key of this type
        raise HostKeyMismatchError(first.host, first.expected, presented) from first


async def connection_report(endpoint: Endpoint) -> dict[str, Any]:
    """TestConnection's answer: connect and authenticate once; Status OK|ERROR, and the
    host key the server presented (``SftpConnectionDetails.HostKey``)."""
    try:
        session = await open_session(endpoint)
    except FileTransferError as exc:
        return {"Status": "ERROR", "StatusMessage": str(exc)}
    result: dict[str, Any] = {"Status": "OK", "StatusMessage": "Connection succeeded"}
    try:
        if session.host_key is not None:
            host_key = session.host_key.export_public_key("openssh").decode().strip()
            result["SftpConnectionDetails"] = {"HostKey": host_key}
    finally:
        session.close()
    return result


async def _open_session(endpoint: Endpoint, algs: list[str] | None) -> Session:
    creds = endpoint.credentials
    client = VerifyingClient(endpoint.policy)
    kex = handshake_options(endpoint.policy)
    if algs:
        kex["server_host_key_algs"] = algs
    options: dict[str, Any] = {
        **kex,
        "username": creds.username,
        # Only the connector's own credentials: no agent, no ~/.ssh keys, no config files.
        "agent_path": None,
        "config": None,
        "client_keys": [asyncssh.import_private_key(creds.private_key)]
        if creds.private_key
        else None,
        "password": creds.password,
        "preferred_auth": "publickey" if creds.private_key else "password,keyboard-interactive",
        # AES-GCM runs in OpenSSL; asyncssh's default first choice (chacha20) is slower
        "encryption_algs": [
            "aes128-gcm@openssh.com",
            "aes256-gcm@openssh.com",
            "chacha20-poly1305@openssh.com",
            "aes128-ctr",
            "aes256-ctr",
        ],
        "keepalive_interval": 15,
        "keepalive_count_max": 4,
        **endpoint.extra_options,
    }
    try:
        conn, _ = await asyncio.wait_for(
            asyncssh.create_connection(lambda: client, endpoint.host, endpoint.port, **options),
            endpoint.connect_timeout,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyMismatchError(
            f"{endpoint.host}:{endpoint.port}",
            endpoint.policy.expected,
            client.presented_fingerprints or ["(none)"],
        ) from exc
    except asyncssh.KeyImportError as exc:
        raise PermanentFileTransferError(
            "AUTH_FAILURE", f"the connector's private key cannot be read: {exc}"
        ) from exc
    except (asyncssh.Error, OSError, TimeoutError) as exc:
        raise classify(exc) from exc
    try:
        sftp = await asyncio.wait_for(conn.start_sftp_client(), endpoint.io_timeout)
    except (asyncssh.Error, OSError, TimeoutError) as exc:
        conn.close()
        raise classify(exc) from exc
    key = client.presented[-1] if client.presented else None
    return Session(conn=conn, sftp=sftp, host_key=key)


class SessionPool:
    """At most ``max_connections`` sessions to one endpoint, shared by concurrent files.

    ``files_per_connection`` > 1 lets several files share one SSH connection (SFTP
    multiplexes requests); 1 is AWS's model of one file per connection.
    """

    def __init__(
        self, endpoint: Endpoint, *, max_connections: int = 1, files_per_connection: int = 1
    ) -> None:
        self.endpoint = endpoint
        self.max_connections = max_connections
        self.files_per_connection = files_per_connection
        self._sessions: list[Session] = []
        self._opening = 0
        self._cond = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """Borrow a session; one that raised a connection error is closed, not reused."""
        session = await self._acquire()
        try:
            yield session
        except BaseException as exc:
            # A missing file or a refused open leaves the connection usable; anything that
            # may have broken the link (or a cancellation mid-request) retires it.
            failure = classify(exc) if isinstance(exc, Exception) else None
            if not isinstance(failure, PermanentFileTransferError):
                session.broken = True
            raise
        finally:
            await self._release(session)

    async def _acquire(self) -> Session:
        async with self._cond:
            while True:
                for s in self._sessions:
                    if not s.broken and s.busy < self.files_per_connection:
                        s.busy += 1
                        return s
                if len(self._sessions) + self._opening < self.max_connections:
                    self._opening += 1
                    break
                await self._cond.wait()
        try:
            session = await open_session(self.endpoint)
        except BaseException:
            async with self._cond:
                self._opening -= 1
                self._cond.notify_all()
            raise
        async with self._cond:
            self._opening -= 1
            session.busy = 1
            self._sessions.append(session)
            return session

    async def _release(self, session: Session) -> None:
        async with self._cond:
            session.busy -= 1
            if session.broken and session in self._sessions:
                self._sessions.remove(session)
                session.close()
            self._cond.notify_all()

    async def close(self) -> None:
        """Close every session."""
        async with self._cond:
            for s in self._sessions:
                s.close()
            self._sessions.clear()
            self._cond.notify_all()
