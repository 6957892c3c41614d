"""The ledger adapter: one entry per landed file, with counters that account for every row.

The items it reads and writes are described in :mod:`ingest.domain.files`. Every write is
conditional on the version (and, where a chunk message names one, the ingestion) it is about,
so a late message of an older version can never change what the ledger says of a newer one.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.dynamo import attr, from_item
from ingest.adapters.ledger_chunks import count_chunk
from ingest.adapters.ledger_chunks import finish_if_complete as finish_when_counted
from ingest.adapters.ledger_items import (
    FILE_SK,
    chunk_prefix,
    entry_from_item,
    file_pk,
    new_file_item,
    same_file,
)
from ingest.adapters.ledger_uploads import record_failed_upload
from ingest.adapters.ledger_versions import register_version
from ingest.adapters.sdk import is_condition_failure, unavailable
from ingest.domain.files import FileEntry, FileStatus

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class Ledger:
    """The DynamoDB ledger adapter. Takes an injected low-level DynamoDB client."""

    def __init__(self, client: DynamoDBClient, table: str, *, clock: Any = time.time) -> None:
        self._db = client
        self._table = table
        self.clock = clock

    @property
    def table(self) -> str:
        """The ledger table's name."""
        return self._table

    # --- reads ---------------------------------------------------------------------------

    def get_file(self, key: str) -> FileEntry | None:
        """The current entry for ``key``, read consistently, or None."""
        try:
            resp = self._db.get_item(
                TableName=self._table,
                Key={"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "dynamodb", "GetItem", key) from exc
        item = resp.get("Item")
        return entry_from_item(item) if item else None

    def list_files(self) -> list[FileEntry]:
        """Every file entry, sorted by key (a scan: meant for the CLI and tests)."""
        return sorted(self._scan_files(), key=lambda e: e.key)

    def _scan_files(self) -> Iterator[FileEntry]:
        for item in self.scan_items("sk = :prefix", FILE_SK):
            yield entry_from_item(item)

    def scan_items(self, condition: str, prefix: str) -> Iterator[dict[str, Any]]:
        """Every item matching ``condition`` (on ``:prefix``), read consistently (a scan)."""
        paginator = self._db.get_paginator("scan")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                FilterExpression=condition,
                ExpressionAttributeValues={":prefix": attr(prefix)},
                ConsistentRead=True,
            ):
                yield from page.get("Items", [])
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "dynamodb", "Scan") from exc

    # --- writes from fanout --------------------------------------------------------------

    def start_file(
        self,
        *,
        key: str,
        feed: str | None,
        version: str,
        etag: str,
        size: int,
        chunks: int,
        chunk_size: int | None = None,
        version_id: str | None = None,
        reason: str | None = None,
    ) -> str | None:
        """Record a newly landed file as RECEIVED, as a new ingestion; returns its id.

        Returns None when this exact version is already past RECEIVED (a duplicate S3 event):
        the caller must not queue it again. A RECEIVED entry of the same version is
        overwritten with a new ingestion, so a fanout that died before queueing is redone and
        the chunk messages it may have sent are dropped as stale. An entry of another version
        is replaced, and recorded beside it as superseded (what it had done, not counted), in
        the same transaction.
        """
        ingestion = secrets.token_hex(8)
        item = new_file_item(
            key,
            FileStatus.RECEIVED,
            now=self.clock(),
            feed=feed,
            version=version,
            ingestion=ingestion,
            etag=etag,
            size=size,
            chunks=chunks,
            reason=reason,
            chunk_size=chunk_size,
            version_id=version_id,
        )
        return ingestion if register_version(self, key, item, version) else None

    def mark_queued(self, key: str, version: str, ingestion: str | None = None) -> None:
        """RECEIVED → QUEUED once every chunk message is on the queue."""
        self._transition(
            key, version, FileStatus.QUEUED, only_from=(FileStatus.RECEIVED,), ingestion=ingestion
        )

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
        item = new_file_item(
            key,
            status,
            now=self.clock(),
            reason=reason,
            etag=etag,
            version=version,
            feed=feed,
            size=size,
        )
        self.write("PutItem", Item=item)

    def record_failed_upload(
        self, key: str, *, reason: str, size: int | None, object_etag: str | None
    ) -> FileStatus | None:
        """An SFTP upload to ``key`` did not complete (:mod:`ingest.adapters.ledger_uploads`)."""
        return record_failed_upload(self, key, reason=reason, size=size, object_etag=object_etag)

    # --- writes from the processor -------------------------------------------------------

    def mark_processing(self, key: str, version: str, ingestion: str | None = None) -> None:
        """RECEIVED/QUEUED → PROCESSING when a chunk starts (a no-op otherwise)."""
        self._transition(
            key,
            version,
            FileStatus.PROCESSING,
            only_from=(FileStatus.RECEIVED, FileStatus.QUEUED),
            ingestion=ingestion,
        )

    #: Add a chunk's counters to its file exactly once; False when it was counted already.
    complete_chunk = count_chunk
    #: The file's final status once every chunk is counted, or None.
    finish_if_complete = finish_when_counted

    def mark_failed(
        self, key: str, version: str, reason: str, ingestion: str | None = None
    ) -> None:
        """Record that a file cannot be completed, with the reason (for the DLQ path)."""
        same, same_values = same_file(ingestion)
        self.update_file(
            key,
            "SET #s = :failed, reason = :reason, updated_at = :now",
            condition=same,
            values={
                ":failed": attr(FileStatus.FAILED),
                ":reason": attr(reason[:1000]),
                ":now": attr(self.clock()),
                ":v": attr(version),
                **same_values,
            },
        )

    # --- recovery ------------------------------------------------------------------------

    def done_chunks(self, key: str, version: str, ingestion: str | None = None) -> set[int]:
        """Indices of the chunks of this ingestion of the file version already counted."""
        prefix = chunk_prefix(version, ingestion)
        done: set[int] = set()
        for item in self.query_items(key, prefix, projection="sk"):
            rest = from_item(item)["sk"][len(prefix) :]
            if rest.isdigit():  # a legacy prefix also matches newer markers
                done.add(int(rest))
        return done

    def mark_requeued(
        self,
        key: str,
        version: str,
        ingestion: str | None = None,
        *,
        reason: str | None = None,
    ) -> bool:
        """Back to QUEUED (from FAILED or a stuck state) when chunks are sent again.

        ``reason`` says why it is queued again (a redrive from the DLQ); without one the old
        reason is removed.
        """
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
            ingestion=ingestion,
            reason=reason,
        )

    # --- helpers -------------------------------------------------------------------------

    def _transition(
        self,
        key: str,
        version: str,
        to: FileStatus,
        *,
        only_from: tuple[FileStatus, ...],
        ingestion: str | None = None,
        reason: str | None = None,
    ) -> bool:
        names = {f":from{i}": attr(s.value) for i, s in enumerate(only_from)}
        same, same_values = same_file(ingestion)
        expression = "SET #s = :to, updated_at = :now" + (
            " REMOVE reason" if reason is None else ", reason = :reason"
        )
        return self.update_file(
            key,
            expression,
            condition=f"{same} AND #s IN ({', '.join(names)})",
            values={
                ":to": attr(to),
                ":v": attr(version),
                ":now": attr(self.clock()),
                **({":reason": attr(reason[:1000])} if reason is not None else {}),
                **same_values,
                **names,
            },
        )

    def query_items(
        self, key: str, prefix: str, *, projection: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The items of ``key`` whose sort key starts with ``prefix``, read consistently."""
        paginator = self._db.get_paginator("query")
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": attr(file_pk(key)), ":prefix": attr(prefix)},
            "ConsistentRead": True,
        }
        if projection:
            request["ProjectionExpression"] = projection
        try:
            for page in paginator.paginate(**request):
                yield from page["Items"]
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "dynamodb", "Query", key) from exc

    def update_file(
        self, key: str, expression: str, *, condition: str, values: dict[str, Any]
    ) -> bool:
        """A conditional update of ``key``'s FILE item; False when the condition did not hold."""
        return self.write(
            "UpdateItem",
            Key={"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )

    def write(self, operation: str, **request: Any) -> bool:
        """One write call; False when its condition did not hold (a newer version, ingestion
        or state won), any other failure translated."""
        calls: dict[str, Callable[..., Any]] = {
            "PutItem": self._db.put_item,
            "UpdateItem": self._db.update_item,
            "TransactWriteItems": self._db.transact_write_items,
        }
        call = calls[operation]
        if operation != "TransactWriteItems":
            request["TableName"] = self._table
        try:
            call(**request)
        except (ClientError, BotoCoreError) as exc:
            if is_condition_failure(exc):
                return False
            raise unavailable(exc, "dynamodb", operation) from exc
        return True
