"""boto3 clients with the project's retry policy, built on demand (never at import time)."""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import boto3
from botocore.config import Config
from msgspec import Struct

#: The region when nothing says otherwise (the local stack's, and the template's samconfig).
DEFAULT_REGION = "us-east-1"

#: botocore's own retry machinery: "standard" mode retries throttling and transient errors
#: with exponential backoff and jitter; we only raise the attempt count.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=60,
    max_pool_connections=50,
)


#: What a session resolves once and keeps (credentials, profile): a change makes a new one.
_SESSION_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
#: boto3 sessions are not thread-safe; clients made from them are.
_SESSION_LOCK = threading.Lock()
_CLIENTS: dict[tuple[AwsTarget, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _session(_env: tuple[str | None, ...]) -> boto3.session.Session:
    # One session loads botocore's service models once; a new session per client paid that
    # again for every client (about 0.2 s each, most of a function's cold start).
    return boto3.session.Session()


def shared_session() -> boto3.session.Session:
    """The process's boto3 session for the current credentials environment."""
    return _session(tuple(os.environ.get(name) for name in _SESSION_ENV))


class AwsTarget(Struct, frozen=True):
    """Where AWS calls go: real AWS (no endpoint) or a local endpoint such as moto."""

    region: str = DEFAULT_REGION
    endpoint_url: str | None = None

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` with the project's retry configuration."""
        with _SESSION_LOCK:
            return shared_session().client(
                service,  # type: ignore[call-overload]
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=kwargs.pop("config", RETRY_CONFIG),
                **kwargs,
            )

    def shared_client(self, service: str) -> Any:
        """One client per (target, service) for the whole process, built on first use.

        boto3 clients are thread-safe; a process that talks to one endpoint through a dozen
        services (the local stack, the CLI) shares them instead of building new ones.
        """
        key = (self, service)
        with _CLIENTS_LOCK:
            found = _CLIENTS.get(key)
        if found is None:
            found = self.client(service)
            with _CLIENTS_LOCK:
                found = _CLIENTS.setdefault(key, found)
        return found

    def resource(self, service: str) -> Any:
        """A boto3 resource (used for DynamoDB's ``batch_writer``)."""
        with _SESSION_LOCK:
            return shared_session().resource(
                service,  # type: ignore[call-overload]
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=RETRY_CONFIG,
            )
