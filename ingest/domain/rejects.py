"""Where a file's rejected rows are kept: ``rejects/<original key>/<chunk>.jsonl``.

Deterministic names, so a replayed chunk overwrites its own reject file; outside
``inbound/``, so reject files never trigger ingestion.
"""

from __future__ import annotations

REJECTS_PREFIX = "rejects/"


def rejects_prefix(key: str) -> str:
    """Where a file's reject files live: ``rejects/<original key>/``."""
    return f"{REJECTS_PREFIX}{key}/"


def rejects_key(key: str, index: int) -> str:
    """The reject file of one chunk: ``rejects/<original key>/<chunk>.jsonl``."""
    return f"{rejects_prefix(key)}{index:06d}.jsonl"
