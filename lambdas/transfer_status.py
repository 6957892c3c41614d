"""TransferStatusFunction: SFTP connector file events → ledger status and retrieval claims."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Metrics

from connectors.status import FileTransferStatus
from connectors.usecases import consume_status_event
from lambdas.runtime import (
    Wiring,
    add_connector_counts,
    add_counts,
    build_connector_function,
    function_logger,
    function_tracer,
)

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()
wiring = Wiring(build_connector_function)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One EventBridge event in, the stored status out (InvalidEventError for other events)."""
    ports = wiring().ports
    outcome = consume_status_event(event, ports.status, ports.api, ports.jobs)
    logger.info("connector file status", extra=outcome)
    status = outcome["status-code"]
    counts = {
        "TransfersCompleted": int(status == FileTransferStatus.COMPLETED),
        "TransfersFailed": int(status == FileTransferStatus.FAILED),
    }
    add_counts(metrics, counts)
    add_connector_counts(metrics, event["detail"]["connector-id"], counts)  # checked by the core
    return outcome
