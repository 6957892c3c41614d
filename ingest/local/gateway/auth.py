"""Who may log in: public keys from the Transfer API, lockout, login grace, session limits.

Keys are looked up per login with ``transfer.describe_user`` (the same source Transfer
Family uses), so adding or removing a partner or a key takes effect at the next login.
Passwords and keyboard-interactive logins are off.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import asyncssh
from botocore.exceptions import ClientError

from ingest.local.gateway.context import Services, Session, TransferUser
from ingest.local.gateway.paths import LogicalRoot

#: "no such user": AWS's code, and moto's.
USER_NOT_FOUND = frozenset({"ResourceNotFoundException", "UserNotFound"})
#: Transfer Family's rule for user names.
USER_NAME = re.compile(r"^[\w][\w@.-]{2,99}$")


class AuthGuard:
    """Locks out a source address after repeated authentication failures."""

    def __init__(
        self,
        *,
        max_failures: int,
        window: float,
        lockout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window
        self._lockout = lockout
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}

    def is_locked(self, ip: str) -> bool:
        """True while ``ip`` is locked out."""
        until = self._locked_until.get(ip)
        if until is None:
            return False
        if self._clock() >= until:
            del self._locked_until[ip]
            return False
        return True

    def record_failure(self, ip: str) -> bool:
        """Count one failure; True if it locks the address out."""
        now = self._clock()
        recent = self._failures[ip]
        recent.append(now)
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        if len(recent) >= self._max:
            del self._failures[ip]  # forget the count: the lockout itself now applies
            self._locked_until[ip] = now + self._lockout
            return True
        return False


class SessionLimiter:
    """At most ``limit`` concurrent sessions per user."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._active: dict[str, int] = defaultdict(int)

    def acquire(self, user: str) -> bool:
        """Take a slot for ``user``; False when the user already has ``limit`` sessions."""
        if self._active[user] >= self._limit:
            return False
        self._active[user] += 1
        return True

    def release(self, user: str) -> None:
        """Give a slot back."""
        self._active[user] = max(0, self._active[user] - 1)

    def active(self, user: str) -> int:
        """How many sessions ``user`` has now."""
        return self._active[user]


def user_from_description(described: dict[str, Any], bucket: str) -> TransferUser:
    """A :class:`TransferUser` from ``describe_user()['User']``.

    Only logical home directories whose ``/`` maps into the gateway's bucket are served:
    anything else would let a user see more than their own prefix.
    """
    name = described["UserName"]
    if described.get("HomeDirectoryType") != "LOGICAL":
        raise ValueError(f"user {name!r}: only LOGICAL home directories are supported")
    targets = [
        m["Target"] for m in described.get("HomeDirectoryMappings") or [] if m["Entry"] == "/"
    ]
    if len(targets) != 1:
        raise ValueError(f"user {name!r}: needs exactly one mapping with Entry '/'")
    target = targets[0].strip("/")
    target_bucket, _, prefix = target.partition("/")
    if target_bucket != bucket or not prefix:
        raise ValueError(f"user {name!r}: '/' must map to a prefix of /{bucket}/")
    keys = []
    for entry in described.get("SshPublicKeys") or []:
        try:
            keys.append(asyncssh.import_public_key(entry["SshPublicKeyBody"]))
        except (asyncssh.KeyImportError, ValueError):
            continue  # a malformed stored key can never match; the others still work
    return TransferUser(
        name=name, root=LogicalRoot(bucket, prefix), public_keys=keys, role=described.get("Role")
    )


class GatewaySSHServer(asyncssh.SSHServer):
    """One SSH connection's authentication and session bookkeeping."""

    def __init__(self, services: Services) -> None:
        self._svc = services
        self._conn: Any = None
        self.session = Session(source_ip="?")
        self._candidate: TransferUser | None = None
        self._holds_slot = False

    def connection_made(self, conn: Any) -> None:
        """Remember the peer; drop it at once if its address is locked out."""
        self._conn = conn
        self._svc.connections.add(conn)
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.session.source_ip = str(peer[0])

    def connection_lost(self, exc: Exception | None) -> None:
        """Release the user's session slot and log the disconnect."""
        self._svc.connections.discard(self._conn)
        if self._holds_slot and self.session.user is not None:
            self._svc.sessions.release(self.session.user.name)
            self._holds_slot = False
            self._svc.audit.log(
                self.session.stream,
                **{"activity-type": "DISCONNECTED", "session-id": self.session.session_id},
            )

    async def begin_auth(self, username: str) -> bool:
        """Look the user up once per login (an unknown user simply has no keys)."""
        self.session.client = self._conn.get_extra_info("client_version")
        if self._svc.guard.is_locked(self.session.source_ip):
            self._auth_failure(username, None, "source address is locked out", count=False)
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
        """Accept only a key stored on the Transfer user; count every refusal."""
        user = self._candidate
        if self._svc.guard.is_locked(self.session.source_ip):
            self._auth_failure(username, key, "source address is locked out", count=False)
            return False
        known = user is not None and user.name == username
        if known and any(k.public_data == key.public_data for k in user.public_keys):  # type: ignore[union-attr]
            self.session.key_fingerprint = str(key.get_fingerprint("sha256"))
            self.session.key_type = key.get_algorithm()
            self.session.key_body = key.export_public_key("openssh").split()[1].decode()
            return True
        self._auth_failure(username, key, "unknown user or key")
        return False

    def auth_completed(self) -> None:
        """Enforce the per-user session limit and log CONNECTED."""
        user = self._candidate
        assert user is not None  # asyncssh calls this only after validate_public_key → True
        self.session.user = user
        if not self._svc.sessions.acquire(user.name):
            self._svc.audit.log(
                self.session.stream,
                **{
                    "activity-type": "ERROR",
                    "session-id": self.session.session_id,
                    "user": user.name,
                    "source-ip": self.session.source_ip,
                    "message": f"session limit of {self._svc.limits.max_sessions_per_user} reached",
                },
            )
            self._conn.disconnect(
                asyncssh.DISC_TOO_MANY_CONNECTIONS, "too many sessions for this user"
            )
            return
        self._holds_slot = True
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
        if not USER_NAME.match(username):
            return None
        loop = asyncio.get_running_loop()
        try:
            resp = await loop.run_in_executor(
                self._svc.executor,
                lambda: self._svc.transfer.describe_user(
                    ServerId=self._svc.server_id, UserName=username
                ),
            )
            return user_from_description(dict(resp["User"]), self._svc.bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in USER_NOT_FOUND:
                self._error(username, f"user lookup failed: {exc}")
            return None
        except (KeyError, ValueError) as exc:
            self._error(username, f"user cannot be served: {exc}")
            return None

    def _auth_failure(self, username: str, key: Any, message: str, *, count: bool = True) -> None:
        locked = count and self._svc.guard.record_failure(self.session.source_ip)
        if locked:
            message += "; source address locked out"
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

    def _error(self, username: str, message: str) -> None:
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
