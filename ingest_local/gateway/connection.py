"""One SSH connection: who logs in (public keys from the Transfer API), its session slot,
and the SFTP channels it may open.

Keys are looked up per login with ``transfer.describe_user`` (the same source Transfer
Family uses), so adding or removing a partner or a key takes effect at the next login.
Passwords and keyboard-interactive logins are off. A connection may be refused up to
``max_auth_tries`` keys; one that ends without authenticating is one failed login for its
source address (:mod:`ingest_local.gateway.auth` says why that, and not each refused key).
Once logged in, a connection with no SFTP traffic for ``idle_timeout`` is closed (keepalive
replies are not traffic: they show the client is alive, not that it is using its slot).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncssh
from asyncssh.sftp import MIN_SFTP_VERSION
from asyncssh.stream import SSHServerStreamSession
from botocore.exceptions import ClientError

from ingest_local.gateway.auth import AuthAttempts
from ingest_local.gateway.context import Services, Session, TransferUser
from ingest_local.gateway.server import GatewaySFTPServer
from ingest_local.gateway.users import describe_user


class SFTPChannel(SSHServerStreamSession[bytes]):
    """One SFTP session channel: the stream session asyncssh itself runs SFTP in (what its
    ``sftp_factory`` option builds), made here so the connection can count its channels."""

    def __init__(
        self,
        factory: Callable[[Any], GatewaySFTPServer],
        session: Session,
        closed: Callable[[], None],
    ) -> None:
        super().__init__(None, factory, MIN_SFTP_VERSION, False)
        self._session = session
        self._closed = closed

    def data_received(self, data: bytes, datatype: Any) -> None:
        self._session.touch()  # what the idle timeout measures: SFTP requests arriving
        super().data_received(data, datatype)

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self._closed()


class GatewaySSHServer(asyncssh.SSHServer):
    """One SSH connection's authentication and session bookkeeping."""

    def __init__(self, services: Services) -> None:
        self._svc = services
        self._conn: Any = None
        self.session = Session(source_ip="?")
        self._candidate: TransferUser | None = None
        self._username = ""
        self._attempts = AuthAttempts(services.limits.max_auth_tries)
        self._authenticated = False
        self._turned_away = False  # refused before trying (lockout, login cap): not a failure
        self._logging_in = False  # holds one of its address's login slots
        self._holds_slot = False
        self._channels = 0
        self._idle_timer: asyncio.TimerHandle | None = None

    # --- the connection ------------------------------------------------------------------

    def connection_made(self, conn: Any) -> None:
        """Remember the peer; at most ``max_unauthenticated_per_ip`` log in at once from it."""
        self._conn = conn
        self._svc.connections.add(self)
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.session.source_ip = str(peer[0])
        if not self._svc.logins.acquire(self.session.source_ip):
            self._turned_away = True
            limit = self._svc.limits.max_unauthenticated_per_ip
            self._error(None, f"{limit} connections from this address are already logging in")
            conn.disconnect(
                asyncssh.DISC_TOO_MANY_CONNECTIONS,
                "too many connections logging in from this address; try again later",
            )
            return
        self._logging_in = True

    def connection_lost(self, exc: Exception | None) -> None:
        """Count a failed login, release the slots, log the disconnect."""
        self._svc.connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._done_logging_in()
        if not self._authenticated and self._attempts.tried and not self._turned_away:
            locked = self._svc.guard.record_failure(self.session.source_ip)
            self._auth_failure(
                self._username,
                None,
                f"connection closed without authenticating after {self._attempts.failures} "
                "failed attempts" + ("; source address locked out" if locked else ""),
            )
        if self._holds_slot and self.session.user is not None:
            self._svc.sessions.release(self.session.user.name)
            self._holds_slot = False
            self._svc.audit.log(
                self.session.stream,
                **{"activity-type": "DISCONNECTED", "session-id": self.session.session_id},
            )

    def close(self) -> None:
        """Close the connection; its open uploads are aborted as after a client disconnect."""
        if self._conn is not None:
            self._conn.close()

    def end(self, reason: str) -> None:
        """Disconnect the client with ``reason``, once the reply being sent has gone out."""
        if self._conn is not None:
            self._error(self.session.user.name if self.session.user else None, reason)
            asyncio.get_running_loop().call_soon(
                self._conn.disconnect, asyncssh.DISC_BY_APPLICATION, reason
            )

    # --- SFTP channels -------------------------------------------------------------------

    def session_requested(self) -> SFTPChannel:
        """Open an SFTP channel, at most ``max_channels_per_connection`` at a time."""
        limit = self._svc.limits.max_channels_per_connection
        if self._channels >= limit:
            message = f"too many SFTP sessions on this connection: the limit is {limit}"
            self._error(self.session.user.name if self.session.user else None, message)
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, message)
        self._channels += 1
        return SFTPChannel(self._sftp_server, self.session, self._channel_closed)

    def _sftp_server(self, chan: Any) -> GatewaySFTPServer:
        return GatewaySFTPServer(chan, self._svc, self.session)

    def _channel_closed(self) -> None:
        self._channels -= 1

    # --- liveness ------------------------------------------------------------------------

    def _watch_idle(self) -> None:
        """Close the connection once it has had no SFTP traffic for ``idle_timeout``."""
        timeout = self._svc.limits.idle_timeout
        idle = time.monotonic() - self.session.last_activity
        if idle < timeout:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(timeout - idle, self._watch_idle)
            return
        self._idle_timer = None
        self.end(f"idle timeout: no SFTP traffic for {timeout:g} s")

    # --- authentication ------------------------------------------------------------------

    async def begin_auth(self, username: str) -> bool:
        """Look the user up once per login (an unknown user simply has no keys)."""
        self.session.client = self._conn.get_extra_info("client_version")
        self._username = username
        if self._svc.guard.is_locked(self.session.source_ip):
            self._turned_away = True
            self._auth_failure(username, None, "source address is locked out")
            self._conn.disconnect(
                asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE,
                "too many authentication failures from this address; try again later",
            )
            return True
        self._candidate = await self._lookup(username)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def validate_public_key(self, username: str, key: Any) -> bool:
        """Accept only a key stored on the Transfer user; a refusal uses up one attempt."""
        user = self._candidate
        if self._svc.guard.is_locked(self.session.source_ip):
            self._turned_away = True
            self._auth_failure(username, key, "source address is locked out")
            return False
        known = user is not None and user.name == username
        if known and any(k.public_data == key.public_data for k in user.public_keys):  # type: ignore[union-attr]
            if self._attempts.accepted(key.public_data):  # its signatures keep failing
                self._out_of_attempts(username)
                return False
            self.session.key_fingerprint = str(key.get_fingerprint("sha256"))
            self.session.key_type = key.get_algorithm()
            self.session.key_body = key.export_public_key("openssh").split()[1].decode()
            self.session.key_data = key.public_data
            return True
        exhausted = self._attempts.refused()
        self._auth_failure(username, key, "unknown user or key")
        if exhausted:
            self._out_of_attempts(username)
        return False

    def _out_of_attempts(self, username: str) -> None:
        self._auth_failure(
            username, None, f"too many authentication failures ({self._attempts.failures})"
        )
        self._conn.disconnect(
            asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "too many authentication failures"
        )

    def _done_logging_in(self) -> None:
        if self._logging_in:
            self._svc.logins.release(self.session.source_ip)
            self._logging_in = False

    def auth_completed(self) -> None:
        """Enforce the per-user session limit and log CONNECTED."""
        user = self._candidate
        assert user is not None  # asyncssh calls this only after validate_public_key → True
        self._authenticated = True
        self._done_logging_in()
        self.session.user = user
        if not self._svc.sessions.acquire(user.name):
            limit = self._svc.limits.max_sessions_per_user
            self._error(user.name, f"session limit of {limit} reached")
            self._conn.disconnect(
                asyncssh.DISC_TOO_MANY_CONNECTIONS, "too many sessions for this user"
            )
            return
        self._holds_slot = True
        if self._svc.limits.idle_timeout:
            self.session.touch()
            self._watch_idle()
        self._svc.audit.log(
            self.session.stream,
            **{
                "activity-type": "CONNECTED",
                "session-id": self.session.session_id,
                "user": user.name,
                "role": user.role,
                "home-dir": "/",
                "source-ip": self.session.source_ip,
                "client": self.session.client,
                "ciphers": f"{self._conn.get_extra_info('recv_cipher')},"
                f"{self._conn.get_extra_info('send_cipher')}",
                "method": "publickey",
                "ssh-public-key": self.session.key_body,
                "ssh-public-key-fingerprint": self.session.key_fingerprint,
                "ssh-public-key-type": self.session.key_type,
            },
        )

    async def _lookup(self, username: str) -> TransferUser | None:
        svc = self._svc
        try:
            return await svc.bridge.run(
                describe_user, svc.transfer, svc.server_id, svc.bucket, username
            )
        except ClientError as exc:
            self._error(username, f"user lookup failed: {exc}")
            return None
        except (KeyError, ValueError) as exc:
            self._error(username, f"user cannot be served: {exc}")
            return None

    def _auth_failure(self, username: str, key: Any, message: str) -> None:
        self._svc.audit.log(
            self.session.stream,
            **{
                "activity-type": "AUTH_FAILURE",
                "session-id": self.session.session_id,
                "user": username,
                "source-ip": self.session.source_ip,
                "client": self.session.client,
                "method": "publickey",
                "ssh-public-key-fingerprint": str(key.get_fingerprint("sha256")) if key else None,
                "message": message,
            },
        )

    def _error(self, username: str | None, message: str) -> None:
        self._svc.audit.log(
            self.session.stream,
            **{
                "activity-type": "ERROR",
                "session-id": self.session.session_id,
                "user": username,
                "source-ip": self.session.source_ip,
                "message": message,
            },
        )
