"""ProcessorFunction: SQS chunk messages → DynamoDB records, with partial batch responses."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.adapters.leases import ChunkLeases
from ingest.adapters.record_sink import RECORDS_CLIENT_CONFIG, DynamoRecordSink
from ingest.adapters.sqs import SqsQueue
from ingest.settings import ProcessorSettings
from ingest.usecases.chunk_messages import handle_chunk_message
from ingest.usecases.processor import ProcessorPorts
from lambdas.runtime import (
    Wired,
    Wiring,
    add_counts,
    aws_target,
    function_logger,
    function_tracer,
    store_feeds_ledger,
)

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()
batch = BatchProcessor(event_type=EventType.SQS)


def build(env: Mapping[str, str]) -> Wired[ProcessorSettings, ProcessorPorts]:
    """The processor's settings and ports."""
    settings = ProcessorSettings.from_env(env)
    store, feeds, ledger = store_feeds_ledger(settings.common)
    aws = aws_target(settings.common)
    sink = DynamoRecordSink(
        aws.client("dynamodb", config=RECORDS_CLIENT_CONFIG),
        settings.records_table,
        writers=settings.write_threads,
    )
    redelivery = SqsQueue(aws.client("sqs"), settings.queue_url) if settings.queue_url else None
    leases = ChunkLeases(aws.client("dynamodb"), settings.common.ledger_table)
    return Wired(settings, ProcessorPorts(feeds, store, sink, ledger, leases, redelivery))


wiring = Wiring(build)


#: the counts of every invocation, 0 when nothing happened (docs/operations.md)
COUNTS = (
    *("RowsWritten", "RowsRejected", "ChunksSucceeded", "ChunksFailed"),
    *("FilesProcessed", "FilesFailed"),
)


@tracer.capture_method(capture_response=False)
def record_handler(record: SQSRecord) -> None:
    wired = wiring()
    settings, ports = wired.settings, wired.ports
    retry_in = None
    if ports.redelivery is not None:
        retry_in = functools.partial(ports.redelivery.delay, record.receipt_handle)
    started = time.monotonic()
    try:
        result = handle_chunk_message(
            record.body,
            receive_count=int(record.attributes.approximate_receive_count),
            max_receive_count=settings.max_receive_count,
            ports=ports,
            retry_in=retry_in,
            retry_backoff_seconds=settings.retry_backoff_seconds,
            on_file_failed=lambda: add_counts(metrics, {"FilesFailed": 1}),
        )
    except Exception:
        add_counts(metrics, {"ChunksFailed": 1})  # the batch item failure
        raise
    finally:
        elapsed_ms = (time.monotonic() - started) * 1000
        metrics.add_metric(name="ChunkDuration", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    add_counts(
        metrics,
        {
            "ChunksSucceeded": 1,
            "RowsWritten": result.rows_ok,
            "RowsRejected": result.rows_rejected,
            "FilesProcessed": int(result.finished_file),
            "FilesFailed": int(result.failed_file),  # a whole-file check (a trailer count)
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Counted per chunk, so they are there when a whole batch fails (BatchProcessingError).
    add_counts(metrics, dict.fromkeys(COUNTS, 0))
    return process_partial_response(
        event=event, record_handler=record_handler, processor=batch, context=context
    )
