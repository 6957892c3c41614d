"""boto3 clients with the project's retry policy, built on demand (never at import time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

#: botocore's own retry machinery: "standard" mode retries throttling and transient errors
#: with exponential backoff and jitter; we only raise the attempt count.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=60,
    max_pool_connections=50,
)


@dataclass(frozen=True)
class AwsTarget:
    """Where AWS calls go: real AWS (no endpoint) or a local endpoint such as moto."""

    region: str = "us-east-1"
    endpoint_url: str | None = None

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` with the project's retry configuration."""
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=kwargs.pop("config", RETRY_CONFIG),
            **kwargs,
        )

    def resource(self, service: str) -> Any:
        """A boto3 resource (used for DynamoDB's ``batch_writer``)."""
        return boto3.session.Session().resource(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=RETRY_CONFIG,
        )
