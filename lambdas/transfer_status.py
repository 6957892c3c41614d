"""TransferStatusFunction: SFTP connector file events → ledger status and retrieval claims."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Metrics

from connectors.status import FileTransferStatus
from connectors.status_wiring import StatusPorts, build_status_ports
from connectors.usecases import ConnectorSettings, consume_status_event
from lambdas.function import (
    Wired,
    Wiring,
    add_connector_counts,
    add_counts,
    function_logger,
    function_tracer,
)

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()


def build(env: Mapping[str, str]) -> Wired[ConnectorSettings, StatusPorts]:
    """The function's settings and ports: no connector engine, so no SFTP (asyncssh) in its
    package; with the builtin engine, after-success actions are left to the retrieve function."""
    settings = ConnectorSettings.from_env(env)
    return Wired(settings, build_status_ports(settings))


wiring = Wiring(build)


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
