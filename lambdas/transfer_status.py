"""TransferStatusFunction: SFTP connector file events → ledger status and retrieval claims."""

from __future__ import annotations

from typing import Any

from connectors.usecases import consume_status_event
from lambdas.runtime import Wiring, build_connector_function, function_logger

logger = function_logger()


wiring = Wiring(build_connector_function)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One EventBridge event in, the stored status out (InvalidEventError for other events)."""
    ports = wiring().ports
    outcome = consume_status_event(event, ports.status, ports.api, ports.jobs)
    logger.info("connector file status", extra=outcome)
    return outcome
