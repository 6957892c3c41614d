"""The records-table adapter: record items → ``BatchWriteItem``, 25 at a time, on a few threads.

Items are serialized with boto3's ``TypeSerializer`` on the caller's thread; a row whose values
DynamoDB cannot store is rejected there, with the reason. The writer threads only send: a
single writer waits for every round trip, which caps a large chunk at a few thousand items/s.
Rows are routed to a writer by their key, so rows with the same key keep their file order, and
inside one batch the last row with a key wins (DynamoDB refuses a batch that names a key
twice), as it would with one ``PutItem`` per row.

``UnprocessedItems`` are re-sent with backoff (botocore's standard retry mode already retries
throttling and 5xx). If DynamoDB refuses a whole batch as invalid, its items are written one by
one and only the item DynamoDB refuses is rejected, with DynamoDB's reason: one bad row never
fails, or hangs, the rest.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import DecimalException
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.sdk import error_code, error_message, unavailable
from ingest.domain.records import RecordRow
from ingest.errors import StorageUnavailableError
from ingest.shared.backoff import Backoff
from ingest.usecases.ports import RejectRow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_INVALID = "ValidationException"
#: Re-sends of UnprocessedItems: up to 8 calls, waiting at most 5 s between them.
DEFAULT_BACKOFF = Backoff(attempts=8, base=0.05, cap=5.0)


@dataclass
class _Batch:
    """Up to 25 distinct keys, each with every row that had it, in file order (the last one is
    what the batch writes)."""

    entries: dict[tuple[str, str], list[tuple[RecordRow, dict[str, Any]]]] = field(
        default_factory=dict
    )
    rows: int = 0


class _Writer:
    """Sends the batches of one lane, in order."""

    def __init__(self, sink: DynamoRecordSink, reject: RejectRow) -> None:
        self._sink = sink
        self._reject = reject
        self._batch = _Batch()
        self.written = 0

    def add(self, row: RecordRow, item: dict[str, Any]) -> None:
        key = (row.item["pk"], row.item["sk"])
        if key not in self._batch.entries and len(self._batch.entries) == self._sink.BATCH_SIZE:
            self.flush()
        self._batch.entries.setdefault(key, []).append((row, item))
        self._batch.rows += 1

    def flush(self) -> None:
        batch, self._batch = self._batch, _Batch()
        if batch.entries:
            self.written += self._sink.send(batch, self._reject)


class DynamoRecordSink:
    """Writes record items to the records table with ``BatchWriteItem``."""

    BATCH_SIZE = 25
    QUEUE_DEPTH = 500

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        writers: int = 4,
        backoff: Backoff = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._table = table
        self._writers = max(1, writers)
        self._backoff = backoff
        self._sleep = sleep

    def write(self, rows: Iterable[RecordRow], reject: RejectRow) -> int:
        """Write every row; returns how many were written (rejected ones are not counted)."""
        if self._writers == 1:
            writer = _Writer(self, reject)
            for row, item in self._serialized(rows, reject):
                writer.add(row, item)
            writer.flush()
            return writer.written
        return self._write_parallel(rows, reject)

    @staticmethod
    def _serialized(
        rows: Iterable[RecordRow], reject: RejectRow
    ) -> Iterable[tuple[RecordRow, dict[str, Any]]]:
        serializer = TypeSerializer()
        for row in rows:
            try:
                item = {name: serializer.serialize(v) for name, v in row.item.items()}
            except (TypeError, DecimalException) as exc:
                reject(row.line, f"a value DynamoDB cannot store: {exc!r}", row.raw)
                continue
            yield row, item

    def _write_parallel(self, rows: Iterable[RecordRow], reject: RejectRow) -> int:
        Entry = tuple[RecordRow, dict[str, Any]] | None
        lanes: list[queue.Queue[Entry]] = [
            queue.Queue(maxsize=self.QUEUE_DEPTH) for _ in range(self._writers)
        ]
        writers = [_Writer(self, reject) for _ in lanes]
        failures: list[BaseException] = []

        def run(writer: _Writer, lane: queue.Queue[Entry]) -> None:
            failed = False
            # Every entry is taken off the lane up to its end marker, whatever happens, so the
            # producer never blocks on a full lane and this thread always ends.
            while (entry := lane.get()) is not None:
                if failed:
                    continue
                try:
                    writer.add(*entry)
                except BaseException as exc:
                    failures.append(exc)
                    failed = True
            if not failed:
                try:
                    writer.flush()
                except BaseException as exc:
                    failures.append(exc)

        threads = [
            threading.Thread(target=run, args=(w, lane), daemon=True, name=f"records-writer-{n}")
            for n, (w, lane) in enumerate(zip(writers, lanes, strict=True))
        ]
        for thread in threads:
            thread.start()
        try:
            for row, item in self._serialized(rows, reject):
                if failures:
                    break
                lanes[hash((row.item["pk"], row.item["sk"])) % len(lanes)].put((row, item))
        finally:
            for lane in lanes:
                lane.put(None)
            for thread in threads:
                thread.join()
        if failures:
            raise failures[0]
        return sum(w.written for w in writers)

    # --- one batch -----------------------------------------------------------------------

    def send(self, batch: _Batch, reject: RejectRow) -> int:
        """Write one batch; returns the rows it wrote."""
        requests: list[Any] = [
            {"PutRequest": {"Item": rows[-1][1]}} for rows in batch.entries.values()
        ]
        for attempt in range(self._backoff.attempts):
            if attempt:
                self._sleep(self._backoff.delay(attempt))
            try:
                resp = self._db.batch_write_item(RequestItems={self._table: requests})
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) == _INVALID:
                    return self._one_by_one(batch, reject)
                raise unavailable(exc, "dynamodb", "BatchWriteItem") from exc
            requests = list(resp.get("UnprocessedItems", {}).get(self._table, []))
            if not requests:
                return batch.rows
        raise StorageUnavailableError(
            "dynamodb",
            "BatchWriteItem",
            f"{len(requests)} items still unprocessed after {self._backoff.attempts} attempts",
        )

    def _one_by_one(self, batch: _Batch, reject: RejectRow) -> int:
        """DynamoDB refused the batch as invalid: find the item it refuses, keep the rest."""
        written = batch.rows
        for row, item in (entry for rows in batch.entries.values() for entry in rows):
            try:
                self._db.put_item(TableName=self._table, Item=item)
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) != _INVALID:
                    raise unavailable(exc, "dynamodb", "PutItem") from exc
                reject(row.line, f"DynamoDB refused the item: {error_message(exc)}", row.raw)
                written -= 1
        return written
