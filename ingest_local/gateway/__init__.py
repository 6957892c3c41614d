"""The local stand-in for AWS Transfer Family: an S3-backed SFTP gateway.

``start_gateway(GatewayConfig(...))`` listens on loopback, authenticates Transfer users by
public key (``transfer.describe_user``), confines each to their logical root, streams uploads
into the landing bucket, and logs and emits events the way Transfer Family does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from ingest.adapters.aws import AwsTarget
from ingest.adapters.multipart import STREAMING_S3_CONFIG
from ingest.adapters.publisher import Publisher
from ingest.domain.events import TRANSFER_EVENT_SOURCE
from ingest.shared.aio import Bridge
from ingest_local.gateway.audit import Audit
from ingest_local.gateway.auth import AuthGuard, SessionLimiter
from ingest_local.gateway.buffers import BufferBudget
from ingest_local.gateway.connection import GatewaySSHServer
from ingest_local.gateway.context import Limits, Services
from ingest_local.gateway.server_keys import fingerprints, load_or_create_host_keys

__all__ = ["Gateway", "GatewayConfig", "Limits", "start_gateway"]

#: Algorithms close to Transfer Family's TransferSecurityPolicy-2024-01: no SHA-1, no CBC,
#: no chacha20-poly1305 (Terrapin). AES-GCM comes first: it is also the fastest here.
KEX_ALGS = [
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
]
ENCRYPTION_ALGS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
]
MAC_ALGS = [
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
]


@dataclass
class GatewayConfig:
    """Where the gateway listens and which AWS resources it serves."""

    aws: AwsTarget
    bucket: str
    server_id: str
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    limits: Limits = field(default_factory=Limits)
    log_group: str | None = None  # default: /aws/transfer/<server-id>
    account_id: str = "123456789012"


@dataclass
class Gateway:
    """A running gateway (returned by :func:`start_gateway`)."""

    port: int
    host_key_fingerprints: list[str]
    host_keys: list[Any]
    services: Services
    _server: Any

    def unlock(self, ip: str | None = None) -> list[str]:
        """Lift the lockout of source address ``ip`` (of all if None) and forget its failed
        logins; returns the addresses that were locked out. Call it on the gateway's loop."""
        return self.services.guard.clear(ip)

    async def close(self, timeout: float = 30.0) -> None:
        """Stop listening, end every session (unfinished uploads are aborted, and each
        sends its Upload Failed event), flush the logs and events."""
        self._server.close()
        await self._server.wait_closed()
        services = self.services
        for live in list(services.connections):
            live.close()
        deadline = asyncio.get_running_loop().time() + timeout
        while services.connections or services.open_uploads:
            if asyncio.get_running_loop().time() > deadline:
                break  # the bucket's lifecycle rule reaps any multipart upload left behind
            await asyncio.sleep(0.05)
        await services.audit.close()
        services.bridge.close()


def _services(config: GatewayConfig) -> Services:
    """The gateway-wide ports and bookkeeping, built from the config."""
    limits = config.limits
    aws = config.aws
    # Every UploadPart in flight holds a part buffer charged to the memory budget, so the
    # budget bounds the gateway's data calls (the bridge's sizing rule).
    bridge = Bridge(limits.buffer_budget_bytes // limits.part_size, name="sftp-gateway")
    server_arn = f"arn:aws:transfer:{aws.region}:{config.account_id}:server/{config.server_id}"
    audit = Audit(
        Publisher(aws.client("logs"), aws.client("events"), source=TRANSFER_EVENT_SOURCE),
        log_group=config.log_group or f"/aws/transfer/{config.server_id}",
        server_arn=server_arn,
        bridge=bridge,
    )
    return Services(
        s3=aws.client("s3", config=STREAMING_S3_CONFIG),
        transfer=aws.client("transfer"),
        audit=audit,
        bridge=bridge,
        guard=AuthGuard(
            max_failures=limits.max_auth_failures,
            window=limits.failure_window,
            lockout=limits.lockout_seconds,
        ),
        sessions=SessionLimiter(limits.max_sessions_per_user),
        logins=SessionLimiter(limits.max_unauthenticated_per_ip),
        bucket=config.bucket,
        server_id=config.server_id,
        limits=limits,
        # one upload's worth of part buffers is kept for reuse; the rest is given back
        buffers=BufferBudget(
            limits.buffer_budget_bytes,
            wait_seconds=limits.buffer_wait_seconds,
            keep_free=limits.parts_in_flight + 1,
        ),
    )


async def start_gateway(config: GatewayConfig) -> Gateway:
    """Start the gateway; host keys are created in ``config.state_dir`` on first use."""
    keys = load_or_create_host_keys(config.state_dir)
    limits = config.limits
    services = _services(config)
    await services.audit.start()

    # No sftp_factory: GatewaySSHServer.session_requested opens SFTP channels itself (so it
    # can count them); exec, shell and scp requests on a channel are refused.
    server = await asyncssh.create_server(
        lambda: GatewaySSHServer(services),
        config.host,
        config.port,
        server_host_keys=keys,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_pty=False,
        login_timeout=limits.login_grace_seconds,
        # a client that stops answering (crashed, network gone) is dropped after
        # keepalive_count_max unanswered keepalive@openssh.com requests
        keepalive_interval=limits.keepalive_interval,
        keepalive_count_max=limits.keepalive_count_max,
        kex_algs=KEX_ALGS,
        encryption_algs=ENCRYPTION_ALGS,
        mac_algs=MAC_ALGS,
        server_version="AWS_SFTP_1.1",  # what Transfer Family announces
    )
    port = server.sockets[0].getsockname()[1]
    return Gateway(
        port=port,
        host_key_fingerprints=fingerprints(keys),
        host_keys=keys,
        services=services,
        _server=server,
    )
