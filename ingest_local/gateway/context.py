"""What the gateway's per-connection objects share: settings, AWS ports, and session facts."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from ingest.shared.aio import Bridge
from ingest_local.gateway.audit import Audit
from ingest_local.gateway.buffers import BufferBudget
from ingest_local.gateway.paths import LogicalRoot, View

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_transfer.client import TransferClient

    from ingest_local.gateway.auth import AuthGuard, SessionLimiter


MIB = 1024 * 1024
#: Limits that 0 turns off (or, for the waits, makes immediate).
_MAY_BE_ZERO = frozenset({"idle_timeout", "keepalive_interval", "buffer_wait_seconds", "max_ahead"})


@dataclass(frozen=True)
class Limits:
    """Tunables of the gateway (defaults suit a laptop and the tests; docs/gateway.md)."""

    # --- uploads and memory
    part_size: int = 8 * MIB
    parts_in_flight: int = 10  # as boto3 upload_file; memory about (N + 1) * part_size
    max_ahead: int = 8 * MIB
    #: all part buffers, parked writes and download blocks of the gateway together
    buffer_budget_bytes: int = 512 * MIB
    #: how long a write waits for budget before it is refused
    buffer_wait_seconds: float = 30.0
    max_handles_per_session: int = 32  # open files per SFTP channel
    max_channels_per_connection: int = 10  # SFTP sessions per SSH connection (MaxSessions)
    # --- authentication
    max_auth_failures: int = 10  # failed logins per source IP within failure_window
    failure_window: float = 300.0
    lockout_seconds: float = 900.0
    max_auth_tries: int = 6  # refused keys per connection (OpenSSH's MaxAuthTries)
    max_unauthenticated_per_ip: int = 10  # connections still logging in, per source IP
    login_grace_seconds: float = 60.0
    max_sessions_per_user: int = 10
    # --- liveness (0 turns one off)
    idle_timeout: float = 900.0  # an authenticated connection with no SFTP traffic is closed
    keepalive_interval: float = 60.0  # keepalive@openssh.com after this long without input
    keepalive_count_max: int = 3  # unanswered keepalives before the connection is dropped

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0 or (value == 0 and f.name not in _MAY_BE_ZERO):
                raise ValueError(f"Limits.{f.name} must be positive, not {value!r}")
        if self.buffer_budget_bytes < self.part_size:
            raise ValueError("Limits.buffer_budget_bytes must hold at least one part")


class LiveConnection(Protocol):
    """What the gateway knows of a live SSH connection (``connection.GatewaySSHServer``)."""

    session: Session

    def close(self) -> None:
        """Close the connection (its sessions end as after a client disconnect)."""

    def end(self, reason: str) -> None:
        """Disconnect the client soon (after the reply being sent), saying ``reason``."""


@dataclass
class Services:
    """The gateway-wide ports every session uses."""

    s3: S3Client
    transfer: TransferClient
    audit: Audit
    #: every blocking call (S3, Transfer, CloudWatch) of every session runs through this
    bridge: Bridge
    guard: AuthGuard
    sessions: SessionLimiter  # authenticated connections per user
    logins: SessionLimiter  # connections still logging in, per source address
    bucket: str
    server_id: str
    limits: Limits
    buffers: BufferBudget
    #: live SSH connections and unfinished uploads, so that close() can end them cleanly
    connections: set[LiveConnection] = field(default_factory=set)
    open_uploads: set[Any] = field(default_factory=set)

    def end_sessions(self, user: str, reason: str) -> int:
        """Disconnect every live connection of ``user``; returns how many."""
        ended = [c for c in self.connections if c.session.user and c.session.user.name == user]
        for conn in ended:
            conn.end(reason)
        return len(ended)


@dataclass
class TransferUser:
    """A Transfer Family user as the gateway needs it."""

    name: str
    root: LogicalRoot  # where "/" is
    public_keys: list[Any]  # asyncssh.SSHKey
    role: str | None = None
    #: "/" and the mappings mounted over it (``/receipts``), with what the policy allows
    view: View | None = None

    @property
    def namespace(self) -> LogicalRoot | View:
        """What :func:`ingest_local.gateway.paths.resolve` maps this user's paths in."""
        return self.view if self.view is not None else self.root


@dataclass
class Session:
    """Facts about one SSH connection, for logs and events."""

    source_ip: str
    client: str | None = None
    session_id: str = field(default_factory=lambda: secrets.token_hex(8))
    user: TransferUser | None = None
    key_fingerprint: str | None = None
    key_type: str | None = None
    key_body: str | None = None  # base64 of the public key, as Transfer logs it
    key_data: bytes | None = None  # the public key's wire form, to re-check it is still valid
    last_activity: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        """Note SFTP traffic (what the idle timeout measures)."""
        self.last_activity = time.monotonic()

    @property
    def stream(self) -> str:
        """The CloudWatch log stream of this session (``<user>.<session-id>``)."""
        name = self.user.name if self.user else "unauthenticated"
        return f"{name}.{self.session_id}"
