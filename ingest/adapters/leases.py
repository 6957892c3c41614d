"""Chunk leases in the ledger table: while a chunk writes records, it holds a lease.

* ``pk = FILE#<key>``, ``sk = LEASE#<version>#<ingestion>#<index>``: the lease of one chunk of
  one ingestion, with ``expires_at`` (epoch seconds). The chunk renews it while it writes and
  deletes it when it is done; a chunk that dies leaves it to expire (and DynamoDB's TTL on
  ``expires_at`` deletes it later).

The processor uses them so that a newer version of a file always wins: a chunk of the current
ingestion writes only once no lease of another (older) ingestion of the same key is live, and
an older chunk notices it was superseded at its next check and stops. See
``ingest/usecases/fencing.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from ingest.adapters.dynamo import attr, from_item
from ingest.adapters.ledger import Ledger
from ingest.adapters.ledger_items import file_pk
from ingest.adapters.sdk import translated
from ingest.usecases.ports import Lease

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

LEASE_PREFIX = "LEASE#"


def lease_sk(lease: Lease) -> str:
    """The sort key of a chunk's lease."""
    return f"{LEASE_PREFIX}{lease.version}#{lease.ingestion or ''}#{lease.index:06d}"


class LiveLease(Struct, frozen=True):
    """Another chunk's lease, as read back."""

    version: str
    ingestion: str | None
    index: int
    expires_at: float


class ChunkLeases:
    """The leases adapter. Takes an injected low-level DynamoDB client."""

    def __init__(
        self, client: DynamoDBClient, table: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = client
        self._table = table
        self._items = Ledger(client, table)
        self.clock = clock

    def hold(self, lease: Lease, ttl: float) -> float:
        """Take or renew ``lease`` for ``ttl`` seconds; returns when it expires."""
        expires = self.clock() + ttl
        with translated("dynamodb", "PutItem", lease.key):
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": attr(file_pk(lease.key)),
                    "sk": attr(lease_sk(lease)),
                    "version": attr(lease.version),
                    "ingestion": attr(lease.ingestion or ""),
                    "chunk": attr(lease.index),
                    # whole epoch seconds: also the table's TTL attribute (template.yaml)
                    "expires_at": attr(math.ceil(expires)),
                },
            )
        return expires

    def release(self, lease: Lease) -> None:
        """Give the lease up (the chunk is done writing, or stopped)."""
        with translated("dynamodb", "DeleteItem", lease.key):
            self._db.delete_item(
                TableName=self._table,
                Key={"pk": attr(file_pk(lease.key)), "sk": attr(lease_sk(lease))},
            )

    def others_live(self, lease: Lease) -> list[LiveLease]:
        """Unexpired leases on the same file that belong to another version or ingestion."""
        return [
            other
            for other in self.live(lease.key)
            if (other.version, other.ingestion) != (lease.version, lease.ingestion)
        ]

    def live(self, key: str) -> list[LiveLease]:
        """Every unexpired lease on the file: the chunks being written now."""
        now = self.clock()
        leases = (_lease(item) for item in self._items.query_items(key, LEASE_PREFIX))
        return [lease for lease in leases if lease.expires_at > now]


def _lease(item: dict[str, Any]) -> LiveLease:
    values = from_item(item)
    return LiveLease(
        version=str(values.get("version", "")),
        ingestion=str(values.get("ingestion") or "") or None,
        index=int(values.get("chunk", 0)),
        expires_at=float(values.get("expires_at", 0)),
    )
