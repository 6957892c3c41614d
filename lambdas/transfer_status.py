"""TransferStatusFunction: SFTP connector file events → ledger status and retrieval claims."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.usecases import ConnectorSettings, consume_status_event
from connectors.wiring import ConnectorPorts, build_connector_ports
from lambdas.runtime import Wired, Wiring, function_logger

logger = function_logger()


def build(env: Mapping[str, str]) -> Wired[ConnectorSettings, ConnectorPorts]:
    """Store, connector API and ports, built once per container (cold start)."""
    settings = ConnectorSettings.from_env(env)
    return Wired(settings, build_connector_ports(settings))


wiring = Wiring(build)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One EventBridge event in, the stored status out (InvalidEventError for other events)."""
    ports = wiring().ports
    outcome = consume_status_event(event, ports.status, ports.api, ports.jobs)
    logger.info("connector file status", extra=outcome)
    return outcome
