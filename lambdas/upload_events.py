"""UploadEventsFunction: Transfer Family upload and rename events → fanout, or PARTIAL."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.domain.events import TRANSFER_UPLOAD_COMPLETED, TRANSFER_UPLOAD_FAILED
from ingest.usecases.upload_outcomes import handle_upload_event
from lambdas.fanout_wiring import build_fanout
from lambdas.runtime import Wiring, add_counts, function_logger, function_tracer

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()
wiring = Wiring(build_fanout)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One EventBridge event in; the files it released or marked PARTIAL out."""
    result = handle_upload_event(event, wiring().ports)
    logger.info("transfer upload event", extra=result)
    # A rename moves an upload already counted (its .filepart's Completed or Failed event).
    files = len(result["files"])
    add_counts(
        metrics,
        {
            "GatewayUploadsCompleted": files if result["event"] == TRANSFER_UPLOAD_COMPLETED else 0,
            "GatewayUploadsPartial": files if result["event"] == TRANSFER_UPLOAD_FAILED else 0,
        },
    )
    return result
