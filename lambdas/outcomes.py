"""OutcomesFunction: the ledger's stream → receipts and EventBridge events of final statuses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.adapters.aws import DEFAULT_REGION, AwsTarget
from ingest.adapters.event_bus import EventBus
from ingest.adapters.feeds_source import CachedFeeds
from ingest.adapters.ledger import Ledger
from ingest.adapters.ledger_stream import file_change
from ingest.adapters.s3 import S3Store
from ingest.settings import EventSenderSettings
from ingest.usecases.outcomes import OutcomePorts, tell_outcome
from lambdas.function import Wired, Wiring, add_counts, function_logger, function_tracer

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()
batch = BatchProcessor(event_type=EventType.DynamoDBStreams)

#: the counts of every invocation, 0 when nothing happened (docs/operations.md)
COUNTS = ("ReceiptsWritten", "EventsPublished", "OutcomesFailed")


def build(env: Mapping[str, str]) -> Wired[EventSenderSettings, OutcomePorts]:
    """The function's settings and ports: the bucket, the feeds, the ledger and the bus."""
    settings = EventSenderSettings.from_env(env)
    common = settings.common
    aws = AwsTarget(region=common.region or DEFAULT_REGION, endpoint_url=common.endpoint_url)
    store = S3Store(aws.client("s3"))
    ports = OutcomePorts(
        feeds=CachedFeeds(common.feeds_uri, store),
        store=store,
        ledger=Ledger(aws.client("dynamodb"), common.ledger_table),
        bus=EventBus(aws.client("events"), settings.event_bus),
        bucket=common.bucket,
    )
    return Wired(settings, ports)


wiring = Wiring(build)


@tracer.capture_method(capture_response=False)
def record_handler(record: DynamoDBRecord) -> None:
    change = file_change(record.raw_event.get("dynamodb") or {})
    if change is None:
        return
    try:
        told = tell_outcome(*change, ports=wiring().ports)
    except Exception:
        add_counts(metrics, {"OutcomesFailed": 1})  # the batch item failure: retried
        new = change[1] or change[0]
        logger.exception("outcome not told; the stream retries it", extra={"key": new and new.key})
        raise
    if told is not None:
        add_counts(metrics, {"ReceiptsWritten": len(told.receipts), "EventsPublished": told.events})


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    add_counts(metrics, dict.fromkeys(COUNTS, 0))
    return process_partial_response(
        event=event, record_handler=record_handler, processor=batch, context=context
    )
