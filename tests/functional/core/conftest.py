"""A moto-backed pipeline: bucket, queue + DLQ with redrive, tables, and the two handlers
driven the way Lambda drives them (S3 event → fanout; SQS event source → processor)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from msgspec.structs import replace
from support_aws import fake_aws_env

from ingest.adapters.feeds_publisher import publish_feeds
from ingest.adapters.ledger import Ledger
from ingest.domain.files import FileEntry
from ingest.usecases.processor import ProcessorPorts
from ingest_local.lambda_service import (
    LambdaContext,
    SqsEventSource,
    in_process_invoker,
    s3_object_created_event,
)
from ingest_local.tables import create_pk_sk_table

REGION = "us-east-1"
BUCKET = "test-landing-123456789012"

FEEDS_YAML = """
feeds:
  - name: orders
    match: "inbound/{partner}/orders/*.csv"
    format: csv
    csv: {delimiter: ",", header: true}
    key: {pk: "ORDER#{order_id}", sk: "PARTNER#{partner}"}
    fields:
      order_id: {type: string, required: true}
      amount: {type: decimal, required: true}
      quantity: {type: int}
      placed_at: {type: timestamp}
  - name: events
    match: "inbound/{partner}/events/*.jsonl"
    format: jsonl
    key: {pk: "EVENT#{event_id}", sk: "PARTNER#{partner}"}
    fields:
      event_id: {type: string, required: true}
      kind: {type: string, required: true}
      value: {type: decimal}
      ok: {type: bool}
      day: {type: date}
"""


@dataclass
class Pipeline:
    s3: Any
    sqs: Any
    ddb: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    records_table: str = "records"
    ledger_table: str = "ledger"
    fanout_results: list[dict[str, Any]] = field(default_factory=list)
    #: the test's monkeypatch, for env changes and processor wiring that undo themselves
    monkeypatch: pytest.MonkeyPatch | None = None

    bucket: str = BUCKET

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.ddb, self.ledger_table)

    def put(self, key: str, data: bytes) -> dict[str, Any]:
        """Upload an object without triggering fanout; returns the put response."""
        return self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)

    def land(
        self, key: str, data: bytes, *, gz: bool = False, principal_id: str | None = None
    ) -> dict[str, Any]:
        """Upload an object and deliver its S3 event to the fanout handler."""
        if gz:
            data = gzip.compress(data)
        resp = self.put(key, data)
        return self.notify(
            key,
            size=len(data),
            etag=resp["ETag"],
            version=resp.get("VersionId"),
            principal_id=principal_id,
        )

    def notify(
        self,
        key: str,
        *,
        size: int,
        etag: str,
        version: str | None,
        principal_id: str | None = None,
    ) -> dict[str, Any]:
        """Deliver an S3 ObjectCreated notification for ``key`` to the fanout handler."""
        extra = {"principal_id": principal_id} if principal_id else {}
        event = s3_object_created_event(
            BUCKET, key, size=size, etag=etag, version_id=version, region=REGION, **extra
        )
        return self.fanout(event)

    def fanout(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the fanout handler with any event (S3, SQS-wrapped, EventBridge)."""
        from lambdas import fanout

        result = fanout.handler(event, LambdaContext(function_name="FanoutFunction"))
        self.fanout_results.append(result)
        return result

    def setenv(self, name: str, value: str) -> None:
        """Change a function setting; handlers re-read settings at their next cold start."""
        assert self.monkeypatch is not None
        self.monkeypatch.setenv(name, value)
        _reset_handler_caches()

    def wire_processor(
        self,
        *,
        store: Callable[[Any], Any] | None = None,
        sink: Callable[[Any], Any] | None = None,
        ledger: Callable[[Any], Any] | None = None,
    ) -> ProcessorPorts:
        """Replace the processor's ports with wrapped ones (fault injection through ports).

        ``store``, ``sink`` and ``ledger`` get the real adapter and return what the processor
        should use.
        """
        from lambdas import processor

        wired = processor.wiring()
        ports = replace(
            wired.ports,
            store=store(wired.ports.store) if store else wired.ports.store,
            sink=sink(wired.ports.sink) if sink else wired.ports.sink,
            ledger=ledger(wired.ports.ledger) if ledger else wired.ports.ledger,
        )
        processor.wiring.use(replace(wired, ports=ports))  # reset by the fixture's teardown
        return ports

    def wire_fanout(self, *, queue: Callable[[Any], Any]) -> Any:
        """Replace the fanout's queue port with a wrapper of the real one; returns it."""
        from lambdas import fanout

        wired = fanout.wiring()
        ports = replace(wired.ports, queue=queue(wired.ports.queue))
        fanout.wiring.use(replace(wired, ports=ports))  # reset by the fixture's teardown
        return ports.queue

    def queue_depth(self, url: str | None = None) -> int:
        """Messages in a queue (visible + in flight)."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def count_items(self) -> int:
        """Items in the records table, counted by DynamoDB (no item transfer)."""
        total = 0
        kwargs: dict[str, Any] = {}
        while True:
            page = self.ddb.scan(TableName=self.records_table, Select="COUNT", **kwargs)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def event_source(self, invoke: Any = None) -> SqsEventSource:
        from lambdas import processor

        return SqsEventSource(
            self.sqs,
            self.queue_url,
            self.queue_arn,
            invoke or in_process_invoker(processor.handler, "ProcessorFunction"),
            batch_size=10,
            region=REGION,
        )

    def drain(self, invoke: Any = None, timeout: float = 120) -> Any:
        return self.event_source(invoke).drain(timeout=timeout, poll_interval=0.05)

    def file(self, key: str) -> FileEntry:
        entry = self.ledger.get_file(key)
        assert entry is not None, f"no ledger entry for {key}"
        return entry

    def items(self) -> list[dict[str, Any]]:
        table = boto3.resource("dynamodb", region_name=REGION).Table(self.records_table)
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = table.scan(**kwargs)
            out.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def rejects(self, key: str) -> list[dict[str, Any]]:
        prefix = f"rejects/{key}/"
        lines: list[dict[str, Any]] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = self.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
                lines.extend(json.loads(line) for line in body.splitlines())
        return sorted(lines, key=lambda r: r["line"])

    def dlq_messages(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30
        )
        return got.get("Messages", [])


def _reset_handler_caches() -> None:
    """Every handler's next invocation is a cold start (it reads the environment again)."""
    from lambdas import fanout, processor, upload_events

    for module in (fanout, processor, upload_events):
        module.wiring.reset()


@pytest.fixture
def feeds_yaml() -> str:
    return FEEDS_YAML


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch, feeds_yaml: str) -> Iterator[Pipeline]:
    fake_aws_env(monkeypatch, REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        publish_feeds(s3, f"s3://{BUCKET}/config/feeds.yaml", feeds_yaml)
        dlq_url = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="ingest",
            Attributes={
                # Short so that retries of failed messages happen within a test.
                "VisibilityTimeout": "1",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        create_pk_sk_table(ddb, "records")
        create_pk_sk_table(ddb, "ledger")
        for name, value in {
            "LANDING_BUCKET": BUCKET,
            "LEDGER_TABLE": "ledger",
            "RECORDS_TABLE": "records",
            "INGEST_QUEUE_URL": queue_url,
            "FEEDS_URI": f"s3://{BUCKET}/config/feeds.yaml",
            "MAX_RECEIVE_COUNT": "5",
            "CHUNK_SIZE_MIB": "64",
        }.items():
            monkeypatch.setenv(name, value)
        _reset_handler_caches()
        yield Pipeline(
            s3=s3,
            sqs=sqs,
            ddb=ddb,
            queue_url=queue_url,
            queue_arn=queue_arn,
            dlq_url=dlq_url,
            monkeypatch=monkeypatch,
        )
        _reset_handler_caches()
