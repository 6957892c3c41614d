"""A scheduled retrieval job as the connector code runs it (``retrievals.yaml`` is read and
checked into these by :mod:`connectors.jobfile`, which only the retrieve function and the CLI
import: the transfer-status function settles claims of jobs without a schema library)."""

from __future__ import annotations

from msgspec import Struct


class RetrievalJob(Struct, frozen=True):
    """One configured retrieval."""

    name: str
    connector_id: str
    remote_directory: str
    destination: str
    pattern: str = "*"
    after_success: str = "leave"  # leave | delete | move
    move_to: str | None = None
