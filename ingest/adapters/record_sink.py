"""The records-table adapter: record items → ``BatchWriteItem``, 25 at a time, on a few threads.

Items are serialized on the caller's thread (``ingest.adapters.wire``: ``TypeSerializer``'s
output, faster); a row whose values DynamoDB cannot store is rejected there, with the reason.
Each batch's body is encoded once (``EncodedBatchWrites``); botocore still signs, sends,
retries and parses every call.
The writer threads only send: a single writer waits for every round trip, which caps a large
chunk at a few thousand items/s. Rows are routed to a writer by their key, so rows with the
same key keep their file order, and inside one batch the last row with a key wins (DynamoDB
refuses a batch that names a key twice), as it would with one ``PutItem`` per row.

``UnprocessedItems`` are re-sent with backoff (botocore's standard retry mode already retries
throttling and 5xx). If DynamoDB refuses a whole batch as invalid, its items are written one by
one and only the item DynamoDB refuses is rejected, with DynamoDB's reason: one bad row never
fails, or hangs, the rest.

A ``WriteFence`` is asked before every request: once a newer version of the file is
registered it refuses, and no further request goes out (``ingest.usecases.fencing``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from decimal import DecimalException
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct, field

from ingest.adapters.aws import RETRY_CONFIG
from ingest.adapters.sdk import error_code, error_message, unavailable
from ingest.adapters.wire import batch_write_body, serialize_item
from ingest.domain.records import RecordRow
from ingest.errors import StorageUnavailableError
from ingest.shared.backoff import Backoff
from ingest.usecases.ports import RejectRow, WriteFence

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_INVALID = "ValidationException"
#: The records client's configuration.
#:
#: * No parameter validation: the sink builds every request itself, from items the domain has
#:   checked against DynamoDB's limits; botocore's validation walks each request again (about
#:   a third of its CPU per row).
#: * Bounded calls: a chunk sends only while its lease has ``fencing.SEND_MARGIN`` (120 s) to
#:   run, so one call must end well within it: 4 attempts of at most 5 s to connect and 15 s
#:   to read, and botocore's backoff between them (at most 1 + 2 + 4 s, plus up to 5 s each
#:   that an ``x-amz-retry-after`` header adds), 102 s in all; tests/unit/core/
#:   test_core_write_bounds.py holds the two together.
#:   Throttling that outlasts it fails the chunk as retryable, and SQS brings it back.
RECORDS_CLIENT_CONFIG = RETRY_CONFIG.merge(
    Config(
        parameter_validation=False,
        connect_timeout=5,
        read_timeout=15,
        retries={"mode": "standard", "total_max_attempts": 4},
    )
)
#: Re-sends of UnprocessedItems: up to 8 calls, waiting at most 5 s between them.
DEFAULT_BACKOFF = Backoff(attempts=8, base=0.05, cap=5.0)

_ENCODED = threading.local()


def _use_encoded_body(params: dict[str, Any], **_: Any) -> None:
    """botocore's ``before-call`` hook: the request's body is the one this thread encoded."""
    body = getattr(_ENCODED, "body", None)
    if body is not None:
        params["body"] = body


class EncodedBatchWrites:
    """``batch_write_item`` whose JSON body is ``wire.batch_write_body``'s.

    botocore is given the batch's first request only, so its validator (if the client has one)
    and its serializer see a well-formed call and have little to walk; a ``before-call`` hook
    then puts the whole batch's encoded body in the request, before it is signed. Everything
    else is botocore's: endpoint, signing, retries, errors, the parsed response. A batch
    holding a binary value is sent the ordinary way.
    """

    HOOK = "before-call.dynamodb.BatchWriteItem"

    def __init__(self, client: DynamoDBClient) -> None:
        self._db = client
        client.meta.events.register(self.HOOK, _use_encoded_body, unique_id=__name__)

    def __call__(self, table: str, requests: list[Any]) -> dict[str, Any]:
        try:
            body = batch_write_body(table, requests)
        except TypeError:
            return dict(self._db.batch_write_item(RequestItems={table: requests}))
        _ENCODED.body = body
        try:
            return dict(self._db.batch_write_item(RequestItems={table: requests[:1]}))
        finally:
            _ENCODED.body = None


class _Batch(Struct):
    """Up to 25 distinct keys, each with every row that had it, in file order (the last one is
    what the batch writes)."""

    entries: dict[tuple[str, str], list[tuple[RecordRow, dict[str, Any]]]] = field(
        default_factory=dict
    )
    rows: int = 0


class _Lane:
    """The batch being filled for one writer: same-key rows always go to the same lane."""

    def __init__(self, size: int) -> None:
        self._size = size
        self.batch = _Batch()

    def add(self, row: RecordRow, item: dict[str, Any]) -> _Batch | None:
        """Add a row; returns the batch it closed when the row's key did not fit in it."""
        key = (row.item["pk"], row.item["sk"])
        full = None
        if key not in self.batch.entries and len(self.batch.entries) == self._size:
            full, self.batch = self.batch, _Batch()
        self.batch.entries.setdefault(key, []).append((row, item))
        self.batch.rows += 1
        return full


class DynamoRecordSink:
    """Writes record items to the records table with ``BatchWriteItem``."""

    BATCH_SIZE = 25
    #: full batches waiting per writer: bounds memory, and lets parsing run ahead a little
    QUEUE_BATCHES = 8

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        writers: int = 1,
        backoff: Backoff = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = client
        self._batch_write = EncodedBatchWrites(client)
        self._table = table
        self._writers = max(1, writers)
        self._backoff = backoff
        self._sleep = sleep

    def write(
        self, rows: Iterable[RecordRow], reject: RejectRow, fence: WriteFence | None = None
    ) -> int:
        """Write every row; returns how many were written (rejected ones are not counted).

        This thread parses and serializes; ``writers`` threads send whole batches, so the
        parsing of the next rows overlaps the round trips of the last ones. ``fence`` is asked
        before every request; once it refuses, no further request goes out, the one in flight
        finishes, and its error is raised.
        """
        lanes = [_Lane(self.BATCH_SIZE) for _ in range(self._writers)]
        queues: list[queue.Queue[_Batch | None]] = [
            queue.Queue(maxsize=self.QUEUE_BATCHES) for _ in lanes
        ]
        written = [0] * len(lanes)
        failures: list[BaseException] = []

        def run(n: int) -> None:
            # Every batch is taken off the queue up to its end marker, whatever happens, so
            # the producer never blocks on a full queue and this thread always ends.
            while (batch := queues[n].get()) is not None:
                if failures:
                    continue
                try:
                    written[n] += self.send(batch, reject, fence)
                except BaseException as exc:
                    failures.append(exc)

        threads = [
            threading.Thread(target=run, args=(n,), daemon=True, name=f"records-writer-{n}")
            for n in range(len(lanes))
        ]
        for thread in threads:
            thread.start()
        try:
            for row, item in self._serialized(rows, reject):
                if failures:
                    break
                n = hash((row.item["pk"], row.item["sk"])) % len(lanes) if len(lanes) > 1 else 0
                if (full := lanes[n].add(row, item)) is not None:
                    queues[n].put(full)
        finally:
            for n, lane in enumerate(lanes):
                if lane.batch.entries and not failures:
                    queues[n].put(lane.batch)
                queues[n].put(None)
            for thread in threads:
                thread.join()
        if failures:
            raise failures[0]
        return sum(written)

    @staticmethod
    def _serialized(
        rows: Iterable[RecordRow], reject: RejectRow
    ) -> Iterable[tuple[RecordRow, dict[str, Any]]]:
        for row in rows:
            try:
                item = serialize_item(row.item)
            except (TypeError, DecimalException) as exc:
                reject(row.line, f"a value DynamoDB cannot store: {exc!r}", row.raw)
                continue
            yield row, item

    # --- one batch -----------------------------------------------------------------------

    def send(self, batch: _Batch, reject: RejectRow, fence: WriteFence | None = None) -> int:
        """Write one batch; returns the rows it wrote. ``fence`` is asked before each call."""
        requests: list[Any] = [
            {"PutRequest": {"Item": rows[-1][1]}} for rows in batch.entries.values()
        ]
        for attempt in range(self._backoff.attempts):
            if attempt:
                self._sleep(self._backoff.delay(attempt))
            if fence is not None:
                fence.before_send()
            try:
                resp = self._batch_write(self._table, requests)
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) == _INVALID:
                    return self._one_by_one(batch, reject, fence)
                raise unavailable(exc, "dynamodb", "BatchWriteItem") from exc
            requests = list(resp.get("UnprocessedItems", {}).get(self._table, []))
            if not requests:
                return batch.rows
        raise StorageUnavailableError(
            "dynamodb",
            "BatchWriteItem",
            f"{len(requests)} items still unprocessed after {self._backoff.attempts} attempts",
        )

    def _one_by_one(self, batch: _Batch, reject: RejectRow, fence: WriteFence | None) -> int:
        """DynamoDB refused the batch as invalid: find the item it refuses, keep the rest."""
        written = batch.rows
        for row, item in (entry for rows in batch.entries.values() for entry in rows):
            if fence is not None:
                fence.before_send()
            try:
                self._db.put_item(TableName=self._table, Item=item)
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) != _INVALID:
                    raise unavailable(exc, "dynamodb", "PutItem") from exc
                reject(row.line, f"DynamoDB refused the item: {error_message(exc)}", row.raw)
                written -= 1
        return written
