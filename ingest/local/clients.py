"""One boto3 client per (target, service) for the local stack's own use.

Every ``AwsTarget.client`` call builds a new boto3 session, and each session parses botocore's
endpoint data again (about 0.3 s). The local stack talks to one moto through a dozen services,
so it shares one client per service instead (boto3 clients are thread-safe).
"""

from __future__ import annotations

import threading
from typing import Any

from ingest.aws import AwsTarget

_cache: dict[tuple[AwsTarget, str], Any] = {}
_lock = threading.Lock()


def client(aws: AwsTarget, service: str) -> Any:
    """The shared client for ``service`` at ``aws``."""
    key = (aws, service)
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = _cache[key] = aws.client(service)
        return found
