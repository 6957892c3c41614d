"""The ledger: one entry per landed file, with counters that account for every row.

Table layout (its own DynamoDB table, ``pk``/``sk`` strings):

* ``pk = FILE#<key>``, ``sk = FILE``: the file's current entry (the latest version of the key).
* ``pk = FILE#<key>``, ``sk = CHUNK#<version>#<index>``: a marker written in the same
  transaction that adds a chunk's counters to the file entry. Its conditional put is what makes
  chunk completion happen exactly once, however often SQS delivers the message.

Other packages keep their own item kinds in the same table under their own ``pk`` prefixes
(for example ``TRANSFER#`` for connector transfers).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ingest.dynamo import attr, from_item
from ingest.errors import StaleVersionError, StorageUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

FILE_SK = "FILE"


class FileStatus(StrEnum):
    """Every state a file can be in; each one is visible in ``ingest status``."""

    RECEIVED = "RECEIVED"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    PROCESSED_WITH_REJECTS = "PROCESSED_WITH_REJECTS"
    FAILED = "FAILED"
    UNMATCHED = "UNMATCHED"
    PARTIAL = "PARTIAL"
    IGNORED = "IGNORED"


@dataclass(frozen=True)
class FileEntry:
    """A file as the ledger knows it (the ``ingest status --json`` contract)."""

    key: str
    status: str
    feed: str | None = None
    version: str | None = None
    etag: str | None = None
    size: int | None = None
    chunks: int = 0
    chunks_done: int = 0
    rows_ok: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    updated_at: float | None = None
    chunk_size: int | None = None
    version_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape printed by ``ingest status --json``."""
        return asdict(self)


def file_pk(key: str) -> str:
    """The partition key of a file's ledger items."""
    return f"FILE#{key}"


def _chunk_sk(version: str, index: int) -> str:
    return f"CHUNK#{version}#{index:06d}"


_ENTRY_FIELDS = frozenset(f.name for f in dataclasses.fields(FileEntry))


def _entry(item: Mapping[str, Any]) -> FileEntry:
    values = from_item(item)
    entry = FileEntry(**{name: v for name, v in values.items() if name in _ENTRY_FIELDS})
    if entry.updated_at is not None:
        entry = dataclasses.replace(entry, updated_at=float(entry.updated_at))
    return entry


def _is_condition_failure(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        if reasons:
            return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
        return "ConditionalCheckFailed" in str(exc)
    return False


def _translate(exc: ClientError, operation: str) -> StorageUnavailableError:
    return StorageUnavailableError("dynamodb", operation, str(exc))


class Ledger:
    """The DynamoDB ledger adapter. Takes an injected low-level DynamoDB client."""

    def __init__(self, client: DynamoDBClient, table: str, *, clock: Any = time.time) -> None:
        self._db = client
        self._table = table
        self._clock = clock

    # --- reads ---------------------------------------------------------------------------

    def get_file(self, key: str) -> FileEntry | None:
        """The current entry for ``key``, read consistently, or None."""
        try:
            resp = self._db.get_item(
                TableName=self._table,
                Key={"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
                ConsistentRead=True,
            )
        except ClientError as exc:
            raise _translate(exc, "GetItem") from exc
        item = resp.get("Item")
        return _entry(item) if item else None

    def list_files(self) -> list[FileEntry]:
        """Every file entry, sorted by key (a scan: meant for the CLI and tests)."""
        return sorted(self._scan_files(), key=lambda e: e.key)

    def _scan_files(self) -> Iterator[FileEntry]:
        paginator = self._db.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="sk = :file",
            ExpressionAttributeValues={":file": attr(FILE_SK)},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                yield _entry(item)

    # --- writes from fanout --------------------------------------------------------------

    def start_file(
        self,
        *,
        key: str,
        feed: str,
        version: str,
        etag: str,
        size: int,
        chunks: int,
        chunk_size: int | None = None,
        version_id: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Record a newly landed file as RECEIVED with its chunk count.

        Returns False when this exact version is already past RECEIVED (a duplicate S3
        event): the caller must not queue it again. A RECEIVED entry of the same version is
        overwritten, so a fanout that died before queueing is simply redone.
        """
        now = self._clock()
        item: dict[str, Any] = {
            "pk": attr(file_pk(key)),
            "sk": attr(FILE_SK),
            "key": attr(key),
            "feed": attr(feed),
            "version": attr(version),
            "etag": attr(etag),
            "size": attr(size),
            "chunks": attr(chunks),
            "chunks_done": attr(0),
            "rows_ok": attr(0),
            "rows_rejected": attr(0),
            "status": attr(FileStatus.RECEIVED),
            "received_at": attr(now),
            "updated_at": attr(now),
        }
        if reason:
            item["reason"] = attr(reason)
        if chunk_size is not None:
            item["chunk_size"] = attr(chunk_size)
        if version_id:
            item["version_id"] = attr(version_id)
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR version <> :v OR #s = :received",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":v": attr(version),
                    ":received": attr(FileStatus.RECEIVED),
                },
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise _translate(exc, "PutItem") from exc
        return True

    def mark_queued(self, key: str, version: str) -> None:
        """RECEIVED → QUEUED once every chunk message is on the queue."""
        self._transition(key, version, FileStatus.QUEUED, only_from=(FileStatus.RECEIVED,))

    def record_terminal(
        self,
        key: str,
        status: FileStatus,
        *,
        reason: str,
        size: int | None = None,
        etag: str | None = None,
        version: str | None = None,
        feed: str | None = None,
    ) -> None:
        """Record a file that ends without processing: UNMATCHED, PARTIAL or IGNORED."""
        now = self._clock()
        item: dict[str, Any] = {
            "pk": attr(file_pk(key)),
            "sk": attr(FILE_SK),
            "key": attr(key),
            "status": attr(status),
            "reason": attr(reason),
            "chunks": attr(0),
            "chunks_done": attr(0),
            "rows_ok": attr(0),
            "rows_rejected": attr(0),
            "updated_at": attr(now),
        }
        for name, value in (("etag", etag), ("version", version), ("feed", feed)):
            if value is not None:
                item[name] = attr(value)
        if size is not None:
            item["size"] = attr(size)
        try:
            self._db.put_item(TableName=self._table, Item=item)
        except ClientError as exc:
            raise _translate(exc, "PutItem") from exc

    # --- writes from the processor -------------------------------------------------------

    def mark_processing(self, key: str, version: str) -> None:
        """RECEIVED/QUEUED → PROCESSING when a chunk starts (a no-op otherwise)."""
        self._transition(
            key,
            version,
            FileStatus.PROCESSING,
            only_from=(FileStatus.RECEIVED, FileStatus.QUEUED),
        )

    def complete_chunk(
        self, key: str, version: str, index: int, *, rows_ok: int, rows_rejected: int
    ) -> bool:
        """Add a chunk's counters to its file exactly once.

        The chunk marker's conditional put and the counter update are one transaction, so a
        redelivered message (or a retry after a crash) cannot count the chunk twice. Returns
        False when the chunk had already been counted.
        """
        now = self._clock()
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                "pk": attr(file_pk(key)),
                                "sk": attr(_chunk_sk(version, index)),
                                "rows_ok": attr(rows_ok),
                                "rows_rejected": attr(rows_rejected),
                                "done_at": attr(now),
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": {"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
                            "UpdateExpression": (
                                "ADD rows_ok :ok, rows_rejected :bad, chunks_done :one "
                                "SET updated_at = :now"
                            ),
                            "ConditionExpression": "version = :v",
                            "ExpressionAttributeValues": {
                                ":ok": attr(rows_ok),
                                ":bad": attr(rows_rejected),
                                ":one": attr(1),
                                ":now": attr(now),
                                ":v": attr(version),
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise _translate(exc, "TransactWriteItems") from exc
            current = self.get_file(key)
            if current is None or current.version != version:
                raise StaleVersionError(
                    f"{key}: chunk {index} of version {version} is stale"
                ) from exc
            return False
        return True

    def finish_if_complete(self, key: str, version: str) -> FileEntry | None:
        """Set PROCESSED / PROCESSED_WITH_REJECTS once every chunk is counted.

        Safe to call any number of times; returns the final entry when the file is complete.
        """
        entry = self.get_file(key)
        if entry is None or entry.version != version or entry.chunks_done < entry.chunks:
            return None
        final = FileStatus.PROCESSED_WITH_REJECTS if entry.rows_rejected else FileStatus.PROCESSED
        if entry.status != final:
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key={"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
                    UpdateExpression="SET #s = :final, updated_at = :now REMOVE reason",
                    ConditionExpression="version = :v AND chunks_done = chunks",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":final": attr(final),
                        ":now": attr(self._clock()),
                        ":v": attr(version),
                    },
                )
            except ClientError as exc:
                if _is_condition_failure(exc):
                    return None
                raise _translate(exc, "UpdateItem") from exc
        return FileEntry(**{**entry.to_json(), "status": final, "reason": None})

    def mark_failed(self, key: str, version: str, reason: str) -> None:
        """Record that a file cannot be completed, with the reason (for the DLQ path)."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
                UpdateExpression="SET #s = :failed, reason = :reason, updated_at = :now",
                ConditionExpression="version = :v",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":failed": attr(FileStatus.FAILED),
                    ":reason": attr(reason[:1000]),
                    ":now": attr(self._clock()),
                    ":v": attr(version),
                },
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return  # a newer version replaced the file: its own status stands
            raise _translate(exc, "UpdateItem") from exc

    # --- recovery ------------------------------------------------------------------------

    def done_chunks(self, key: str, version: str) -> set[int]:
        """Indices of the chunks of this file version already counted."""
        prefix = _chunk_sk(version, 0)[: -len("000000")]
        done: set[int] = set()
        paginator = self._db.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": attr(file_pk(key)),
                    ":prefix": attr(prefix),
                },
                ProjectionExpression="sk",
                ConsistentRead=True,
            ):
                done.update(int(from_item(item)["sk"][len(prefix) :]) for item in page["Items"])
        except ClientError as exc:
            raise _translate(exc, "Query") from exc
        return done

    def mark_requeued(self, key: str, version: str) -> bool:
        """Back to QUEUED (from FAILED or a stuck state) when missing chunks are re-sent."""
        return self._transition(
            key,
            version,
            FileStatus.QUEUED,
            only_from=(
                FileStatus.FAILED,
                FileStatus.RECEIVED,
                FileStatus.QUEUED,
                FileStatus.PROCESSING,
            ),
        )

    # --- helpers -------------------------------------------------------------------------

    def _transition(
        self, key: str, version: str, to: FileStatus, *, only_from: tuple[FileStatus, ...]
    ) -> bool:
        names = {f":from{i}": attr(s.value) for i, s in enumerate(only_from)}
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
                UpdateExpression="SET #s = :to, updated_at = :now REMOVE reason",
                ConditionExpression=f"version = :v AND #s IN ({', '.join(names)})",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":to": attr(to),
                    ":v": attr(version),
                    ":now": attr(self._clock()),
                    **names,
                },
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise _translate(exc, "UpdateItem") from exc
        return True
