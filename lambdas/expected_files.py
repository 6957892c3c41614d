"""ExpectedFilesFunction: on its schedule, deadlines passed without their files → MISSING,
files that came after all → LATE (ingest.usecases.expected)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Metrics

from ingest.adapters.aws import DEFAULT_REGION, AwsTarget
from ingest.adapters.event_bus import EventBus
from ingest.adapters.feeds_source import CachedFeeds
from ingest.adapters.ledger_expected import ExpectedItems
from ingest.adapters.s3 import S3Store
from ingest.domain.expected import scheduled_time
from ingest.settings import EventSenderSettings
from ingest.usecases.expected import ExpectedPorts, check_expected
from lambdas.function import Wired, Wiring, add_counts, function_logger, function_tracer

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()


def build(env: Mapping[str, str]) -> Wired[EventSenderSettings, ExpectedPorts]:
    """The function's settings and ports: the feeds, the ledger's expected items, the bus."""
    settings = EventSenderSettings.from_env(env)
    common = settings.common
    aws = AwsTarget(region=common.region or DEFAULT_REGION, endpoint_url=common.endpoint_url)
    ports = ExpectedPorts(
        feeds=CachedFeeds(common.feeds_uri, S3Store(aws.client("s3"))),
        ledger=ExpectedItems(aws.client("dynamodb"), common.ledger_table),
        bus=EventBus(aws.client("events"), settings.event_bus),
    )
    return Wired(settings, ports)


wiring = Wiring(build)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A scheduled event in (its ``time`` is the check's now, so a retry checks the same
    moment), what the check did out."""
    report = check_expected(scheduled_time(event, datetime.now(UTC)), wiring().ports)
    add_counts(metrics, {"FilesMissing": len(report.missing), "FilesLate": len(report.late)})
    logger.info("expected files checked", extra=report.to_json())
    return report.to_json()
