"""What the gateway's per-connection objects share: settings, AWS ports, and session facts."""

from __future__ import annotations

import secrets
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest.ledger import Ledger
from ingest.local.gateway.audit import Audit
from ingest.local.gateway.paths import LogicalRoot

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_transfer.client import TransferClient

    from ingest.local.gateway.auth import AuthGuard, SessionLimiter


@dataclass(frozen=True)
class Limits:
    """Tunables of the gateway (defaults suit a laptop and the tests)."""

    part_size: int = 8 * 1024 * 1024
    parts_in_flight: int = 10  # as boto3 upload_file; memory about (N + 1) * part_size
    max_ahead: int = 8 * 1024 * 1024
    max_auth_failures: int = 10  # per source IP within failure_window
    failure_window: float = 300.0
    lockout_seconds: float = 900.0
    login_grace_seconds: float = 60.0
    max_sessions_per_user: int = 10


@dataclass
class Services:
    """The gateway-wide ports every session uses."""

    s3: S3Client
    transfer: TransferClient
    ledger: Ledger
    audit: Audit
    executor: Executor
    guard: AuthGuard
    sessions: SessionLimiter
    bucket: str
    server_id: str
    limits: Limits
    #: live SSH connections and unfinished uploads, so that close() can end them cleanly
    connections: set[Any] = field(default_factory=set)
    open_uploads: set[Any] = field(default_factory=set)


@dataclass
class TransferUser:
    """A Transfer Family user as the gateway needs it."""

    name: str
    root: LogicalRoot
    public_keys: list[Any]  # asyncssh.SSHKey
    role: str | None = None


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

    @property
    def stream(self) -> str:
        """The CloudWatch log stream of this session (``<user>.<session-id>``)."""
        name = self.user.name if self.user else "unauthenticated"
        return f"{name}.{self.session_id}"
