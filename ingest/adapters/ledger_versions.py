"""A new version of a file taking over its ledger entry: the old one is recorded as superseded.

Fanout registers each landed version with ``Ledger.start_file``. When the entry it replaces is
of another version, the replacement and the old version's record (``SUPERSEDED#``, see
:mod:`ingest.adapters.ledger_items`) are one transaction, conditional on the entry still being
what was read, so neither can happen without the other, and a race re-reads and tries again.
The old version's chunks still in flight see the new entry and stop
(:mod:`ingest.usecases.fencing`); its counters never reach the new entry.
"""

from __future__ import annotations

from typing import Any

from ingest.adapters.dynamo import attr
from ingest.adapters.ledger_items import (
    RACE_RETRIES,
    SUPERSEDED_PREFIX,
    LedgerTable,
    superseded_from_item,
    superseded_item,
)
from ingest.domain.files import FileEntry, FileStatus, SupersededVersion
from ingest.errors import StorageUnavailableError


def register_version(ledger: LedgerTable, key: str, item: dict[str, Any], version: str) -> bool:
    """Make ``item`` (a fresh RECEIVED entry of ``version``) the file's entry.

    False when this version is already past RECEIVED (a duplicate S3 event). A RECEIVED entry
    of the same version is overwritten (a fanout redone); an entry of another version is
    replaced and recorded as superseded.
    """
    for _ in range(RACE_RETRIES):
        old = ledger.get_file(key)
        if old is not None and old.version == version and old.status != FileStatus.RECEIVED:
            return False
        if _replace(ledger, old, item, version):
            return True
    raise StorageUnavailableError(
        "dynamodb", "PutItem", f"{key}: the file entry kept changing while it was registered"
    )


def superseded_versions(ledger: LedgerTable, key: str) -> list[SupersededVersion]:
    """The versions of ``key`` that newer ones replaced, oldest first."""
    found = [superseded_from_item(item) for item in ledger.query_items(key, SUPERSEDED_PREFIX)]
    return sorted(found, key=lambda s: s.superseded_at)


def all_superseded(ledger: LedgerTable) -> dict[str, list[SupersededVersion]]:
    """Every file's superseded versions, by key, oldest first."""
    found: dict[str, list[SupersededVersion]] = {}
    for item in ledger.scan_items("begins_with(sk, :prefix)", SUPERSEDED_PREFIX):
        record = superseded_from_item(item)
        found.setdefault(record.key, []).append(record)
    return {key: sorted(v, key=lambda s: s.superseded_at) for key, v in found.items()}


def _replace(
    ledger: LedgerTable, old: FileEntry | None, item: dict[str, Any], version: str
) -> bool:
    if old is None:
        return ledger.write("PutItem", Item=item, ConditionExpression="attribute_not_exists(pk)")
    condition, values = _still(old)
    put = {
        "Item": item,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": values,
    }
    if old.version is None or old.version == version:
        return ledger.write("PutItem", **put)
    record = superseded_item(old, by=version, now=ledger.clock())
    return ledger.write(
        "TransactWriteItems",
        TransactItems=[
            {"Put": {"TableName": ledger.table, **put}},
            {"Put": {"TableName": ledger.table, "Item": record}},
        ],
    )


def _still(entry: FileEntry) -> tuple[str, dict[str, Any]]:
    """A condition (and its values) that the FILE item is still ``entry``: the same version,
    ingestion and status (``#s``)."""
    parts = ["#s = :seen_status"]
    values = {":seen_status": attr(entry.status)}
    for name, value in (("version", entry.version), ("ingestion", entry.ingestion)):
        if value is None:
            parts.append(f"attribute_not_exists({name})")
        else:
            parts.append(f"{name} = :seen_{name}")
            values[f":seen_{name}"] = attr(value)
    return " AND ".join(parts), values
