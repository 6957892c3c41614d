"""UploadEventsFunction: Transfer Family upload and rename events → fanout, or PARTIAL."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.usecases.upload_outcomes import handle_upload_event
from lambdas.runtime import Wiring, build_fanout, function_logger

logger = function_logger()
wiring = Wiring(build_fanout)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One EventBridge event in; the files it released or marked PARTIAL out."""
    result = handle_upload_event(event, wiring().ports)
    logger.info("transfer upload event", extra=result)
    return result
