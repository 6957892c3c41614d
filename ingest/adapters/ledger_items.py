"""How the ledger stores a file: item keys and attribute values (its own DynamoDB table).

* ``pk = FILE#<key>``, ``sk = FILE``: the file's current entry (the latest version of the key).
* ``pk = FILE#<key>``, ``sk = CHUNK#<version>#<ingestion>#<index>``: a marker written in the
  same transaction that adds a chunk's counters to the file entry. Its conditional put is what
  makes chunk completion happen exactly once, however often SQS delivers the message. It names
  the ingestion, not just the version: a version sent again later (A, then B, then A) is a new
  ingestion whose chunks count afresh.
* ``pk = FILE#<key>``, ``sk = SUPERSEDED#<version>#<ingestion>``: a version that a newer one
  replaced, with what it had done by then (``SupersededVersion``), written by fanout when it
  registers the newer one.
* ``pk = FILE#<key>``, ``sk = SOURCE#<transfer-id>``: the connector transfer that brought the
  file (connector, transfer, remote path), written by the connectors' status store when a
  retrieve completes, read by ``ingest status KEY``; it expires with the transfer records.

Other packages keep their own item kinds in the same table under their own ``pk`` prefixes
(for example ``TRANSFER#`` for connector transfers).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from ingest.adapters.dynamo import attr, from_item
from ingest.domain.files import FileEntry, SupersededVersion

FILE_SK = "FILE"
#: How often a write that lost a race on the file entry re-reads it and tries again.
RACE_RETRIES = 5


def file_pk(key: str) -> str:
    """The partition key of a file's ledger items."""
    return f"FILE#{key}"


#: The sort-key prefix of a file's links to the transfers that brought it.
SOURCE_PREFIX = "SOURCE#"


def source_sk(transfer_id: str) -> str:
    """The sort key of a file's link to the transfer that retrieved it."""
    return f"{SOURCE_PREFIX}{transfer_id}"


def chunk_prefix(version: str, ingestion: str | None) -> str:
    """The sort-key prefix of one ingestion's chunk markers."""
    return f"CHUNK#{version}#{ingestion}#" if ingestion else f"CHUNK#{version}#"


def chunk_sk(version: str, ingestion: str | None, index: int) -> str:
    """The sort key of one chunk's marker."""
    return f"{chunk_prefix(version, ingestion)}{index:06d}"


SUPERSEDED_PREFIX = "SUPERSEDED#"


def superseded_sk(version: str, ingestion: str | None) -> str:
    """The sort key of a replaced version's record."""
    return f"{SUPERSEDED_PREFIX}{version}#{ingestion or ''}"


def superseded_item(old: FileEntry, *, by: str, now: float) -> dict[str, Any]:
    """The record of ``old`` (the entry a newer version ``by`` replaced), in the wire format."""
    version = old.version or ""
    return ledger_item(
        {
            "pk": file_pk(old.key),
            "sk": superseded_sk(version, old.ingestion),
            "key": old.key,
            "version": version,
            "ingestion": old.ingestion,
            "status": old.status,
            "rows_ok": old.rows_ok,
            "rows_rejected": old.rows_rejected,
            "chunks": old.chunks,
            "chunks_done": old.chunks_done,
            "superseded_at": now,
            "superseded_by": by,
            "version_id": old.version_id,
        }
    )


_SUPERSEDED_FIELDS = frozenset(SupersededVersion.__struct_fields__)


def superseded_from_item(item: Mapping[str, Any]) -> SupersededVersion:
    """A SUPERSEDED item as a :class:`SupersededVersion`."""
    values = {name: v for name, v in from_item(item).items() if name in _SUPERSEDED_FIELDS}
    values["superseded_at"] = float(values["superseded_at"])
    return SupersededVersion(**values)


_ENTRY_FIELDS = frozenset(FileEntry.__struct_fields__)
_FLOATS = ("updated_at", "received_at")


def entry_from_item(item: Mapping[str, Any]) -> FileEntry:
    """A FILE item (DynamoDB attribute values) as a :class:`FileEntry`."""
    values = {name: v for name, v in from_item(item).items() if name in _ENTRY_FIELDS}
    for name in _FLOATS:
        if values.get(name) is not None:
            values[name] = float(values[name])
    failed = values.get("failed_upload")
    if failed is not None and failed.get("at") is not None:
        values["failed_upload"] = {**failed, "at": float(failed["at"])}
    return FileEntry(**values)


def ledger_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A whole ledger item in DynamoDB's wire format (``None`` values left out)."""
    return {name: attr(v) for name, v in values.items() if v is not None}


def new_file_item(key: str, status: str, *, now: float, **fields: Any) -> dict[str, Any]:
    """A FILE item in the wire format: a fresh entry with zeroed counters, plus ``fields``
    (``None`` values left out)."""
    values: dict[str, Any] = {
        "pk": file_pk(key),
        "sk": FILE_SK,
        "key": key,
        "status": status,
        "chunks": 0,
        "chunks_done": 0,
        "rows_ok": 0,
        "rows_rejected": 0,
        "received_at": now,
        "updated_at": now,
        **fields,
    }
    return ledger_item(values)


def same_file(ingestion: str | None) -> tuple[str, dict[str, Any]]:
    """A condition (and its values) that the entry is still this version and ingestion."""
    if ingestion is None:
        return "version = :v", {}
    return "version = :v AND ingestion = :i", {":i": attr(ingestion)}


class LedgerTable(Protocol):
    """The ledger adapter's reads and conditional writes, as the ledger's helper modules
    (``ledger_chunks``, ``ledger_envelopes``, ``ledger_uploads``, ``ledger_versions``) use them."""

    @property
    def table(self) -> str: ...

    def clock(self) -> float: ...

    def get_file(self, key: str) -> FileEntry | None: ...

    def write(self, operation: str, **request: Any) -> bool: ...

    def update_file(
        self, key: str, expression: str, *, condition: str, values: dict[str, Any]
    ) -> bool: ...

    def query_items(
        self, key: str, prefix: str, *, projection: str | None = None
    ) -> Iterator[dict[str, Any]]: ...

    def scan_items(self, condition: str, prefix: str) -> Iterator[dict[str, Any]]: ...
