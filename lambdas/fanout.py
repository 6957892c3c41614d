"""FanoutFunction: S3 ObjectCreated (direct, in SQS, or via EventBridge) → chunk messages."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.domain.events import landed_objects
from ingest.usecases.fanout import ingest_object
from lambdas.runtime import Wiring, build_fanout, function_logger

logger = function_logger()
metrics = Metrics()
wiring = Wiring(build_fanout)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ports = wiring().ports
    results = [ingest_object(obj, ports) for obj in landed_objects(event)]
    for result in results:
        metrics.add_metric(name=f"Files{result.outcome.title()}", unit=MetricUnit.Count, value=1)
    return {"files": [asdict(r) for r in results]}
