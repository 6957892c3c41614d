"""DynamoDB stream event source mappings, emulated: poll the stream, invoke, checkpoint.

moto holds the streams (``dynamodbstreams`` DescribeStream / GetShardIterator / GetRecords)
but would run a stream-mapped function itself, in Docker, on every write. So the local deploy
takes stream mappings out of the template (:func:`stream_mapping_of`, like
``EventInvokeConfig``) and :class:`DynamoStreamSource` plays the mapping as Lambda does:

* records are read in order, per shard, from ``StartingPosition``;
* ``FilterCriteria`` patterns drop records before the function sees them (EventBridge pattern
  syntax, matched by moto's own EventBridge matcher); dropped records are checkpointed;
* a batch of up to ``BatchSize`` records is one invocation, shaped as Lambda builds it;
* with ``ReportBatchItemFailures`` the records before the first reported failure are
  checkpointed and the batch is retried from it; an error of the function fails the batch;
* ``BisectBatchOnFunctionError`` halves a failing batch for its next attempt;
* after ``MaximumRetryAttempts`` retries the batch is skipped and, with an ``OnFailure``
  destination, a record describing it (``DDBStreamBatchInfo``) goes to that SQS queue.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.events.models import EventPattern

from ingest_local.lambda_service import PollResult, failed_message_ids
from ingest_local.template_refs import function_of

log = logging.getLogger("ingest_local.streams")

Invoke = Callable[[dict[str, Any]], Any]
#: how long a poll that found nothing waits before the next (Lambda polls a shard 4 times a second)
IDLE_WAIT = 0.25
#: how often the stream's shards are listed again (moto's stream has one, for ever)
SHARDS_TTL = 30.0


@dataclass
class StreamMappingSpec:
    """A DynamoDB stream event source mapping as the template declares it (logical ids)."""

    function: str
    table: str
    batch_size: int = 100
    batching_window: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    report_batch_item_failures: bool = False
    bisect: bool = False
    #: -1: until the record expires (Lambda's default)
    max_retries: int = -1
    #: the OnFailure queue's logical id, then (deployed) its URL
    on_failure: str = ""
    filters: list[str] = field(default_factory=list)


def _stream_table(arn_expr: Any) -> str | None:
    """The table of ``Fn::GetAtt [Table, StreamArn]`` (None for any other expression)."""
    if isinstance(arn_expr, dict) and "Fn::GetAtt" in arn_expr:
        target = arn_expr["Fn::GetAtt"]
        lid, attr = target if isinstance(target, list) else target.split(".", 1)
        if attr == "StreamArn":
            return str(lid)
    return None


def stream_mapping_of(props: Mapping[str, Any]) -> StreamMappingSpec | None:
    """The spec of an ``AWS::Lambda::EventSourceMapping`` on a table's stream, else None."""
    table = _stream_table(props.get("EventSourceArn"))
    function = function_of(props.get("FunctionName"))
    if table is None or function is None:
        return None
    destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    filters = props.get("FilterCriteria", {}).get("Filters", [])
    return StreamMappingSpec(
        function=function,
        table=table,
        batch_size=int(props.get("BatchSize", 100)),
        batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
        report_batch_item_failures="ReportBatchItemFailures"
        in props.get("FunctionResponseTypes", []),
        bisect=bool(props.get("BisectBatchOnFunctionError", False)),
        max_retries=int(props.get("MaximumRetryAttempts", -1)),
        on_failure=function_of(destination) or "",
        filters=[str(f["Pattern"]) for f in filters if isinstance(f.get("Pattern"), str)],
    )


def _epoch(value: Any) -> Any:
    return value.timestamp() if isinstance(value, datetime) else value


def lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record as Lambda puts it in the event (epoch seconds, the stream's ARN)."""
    change = dict(record["dynamodb"])
    if "ApproximateCreationDateTime" in change:
        change["ApproximateCreationDateTime"] = _epoch(change["ApproximateCreationDateTime"])
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", region),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


class DynamoStreamSource:
    """One DynamoDB stream event source mapping (see the module docstring)."""

    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        invoke: Invoke,
        spec: StreamMappingSpec,
        *,
        sqs_client: Any = None,
        function_arn: str = "",
        region: str = "us-east-1",
        retry_delay: float = 1.0,
    ) -> None:
        self.streams = streams_client
        self.stream_arn = stream_arn
        self.invoke = invoke
        self.spec = spec
        self.sqs = sqs_client
        self.function_arn = function_arn
        self.region = region
        self.retry_delay = retry_delay
        self.patterns = [EventPattern.load(p) for p in spec.filters]
        self._iterators: dict[str, str | None] = {}
        #: read, not yet checkpointed (in order), per shard
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._attempts = 0
        self._size = spec.batch_size
        self._retry_at = 0.0
        self._shard_ids: list[str] = []
        self._shards_at = -SHARDS_TTL

    def busy(self) -> bool:
        """Whether records were read that the function has not yet handled for good."""
        return any(self._pending.values())

    def _shards(self) -> list[str]:
        if time.monotonic() - self._shards_at >= SHARDS_TTL:
            desc = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
            self._shard_ids = [s["ShardId"] for s in desc.get("Shards", [])]
            self._shards_at = time.monotonic()
        return self._shard_ids

    def _read(self, shard: str) -> None:
        if shard not in self._iterators:
            self._iterators[shard] = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard,
                ShardIteratorType=self.spec.starting_position,
            )["ShardIterator"]
        iterator = self._iterators[shard]
        if iterator is None:
            return
        got = self.streams.get_records(ShardIterator=iterator, Limit=1000)
        self._iterators[shard] = got.get("NextShardIterator")
        records = [lambda_record(r, self.stream_arn, self.region) for r in got["Records"]]
        self._pending.setdefault(shard, []).extend(r for r in records if self._wanted(r))

    def _wanted(self, record: dict[str, Any]) -> bool:
        return not self.patterns or any(p.matches_event(record) for p in self.patterns)  # type: ignore[arg-type]

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Read what the shards have, invoke the function with one batch per shard."""
        handled = 0
        for shard in self._shards():
            self._read(shard)
            if self._pending.get(shard) and time.monotonic() >= self._retry_at:
                handled += self._invoke(shard).received
        if not handled:
            time.sleep(min(IDLE_WAIT, wait_seconds or IDLE_WAIT))
        return handled

    def _invoke(self, shard: str) -> PollResult:
        pending = self._pending[shard]
        batch = pending[: self._size]
        ids = [r["dynamodb"]["SequenceNumber"] for r in batch]
        try:
            response = self.invoke({"Records": batch})
        except Exception as exc:  # the whole batch failed, as in AWS
            log.warning("%s failed a stream batch of %d: %s", self.spec.function, len(batch), exc)
            self._failed(shard, batch, bisect=True)
            return PollResult(received=len(batch), failed=len(batch), error=str(exc))
        failed = failed_message_ids(
            response, ids, report_batch_item_failures=self.spec.report_batch_item_failures
        )
        if not failed:
            del pending[: len(batch)]
            self._attempts, self._size = 0, self.spec.batch_size
            return PollResult(received=len(batch), succeeded=len(batch))
        # checkpoint before the first failed record; the rest is retried from there
        first = min(ids.index(i) for i in failed)
        del pending[:first]
        self._failed(shard, batch[first:], bisect=False)
        return PollResult(received=len(batch), succeeded=first, failed=len(batch) - first)

    def _failed(self, shard: str, batch: list[dict[str, Any]], *, bisect: bool) -> None:
        self._attempts += 1
        if bisect and self.spec.bisect and len(batch) > 1:
            self._size = max(1, len(batch) // 2)
        if 0 <= self.spec.max_retries < self._attempts:
            self._discard(shard, batch)
            self._attempts, self._size = 0, self.spec.batch_size
            return
        self._retry_at = time.monotonic() + self.retry_delay

    def _discard(self, shard: str, batch: list[dict[str, Any]]) -> None:
        """Skip a batch that used up its retries, telling the OnFailure destination."""
        del self._pending[shard][: len(batch)]
        if not (self.spec.on_failure and self.sqs is not None):
            log.error("%s: dropped %d stream records", self.spec.function, len(batch))
            return
        first, last = batch[0]["dynamodb"], batch[-1]["dynamodb"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self._attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
            "version": "1.0",
            "timestamp": now,
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": first.get("ApproximateCreationDateTime"),
                "approximateArrivalOfLastRecord": last.get("ApproximateCreationDateTime"),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=self.spec.on_failure, MessageBody=json.dumps(record))
