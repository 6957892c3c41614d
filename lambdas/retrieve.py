"""RetrieveFunction: EventBridge schedule → every retrieval job in retrievals.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.usecases import ConnectorSettings, retrieve
from connectors.wiring import ConnectorPorts, build_connector_ports
from lambdas.runtime import Wired, Wiring, function_logger

logger = function_logger()


def build(env: Mapping[str, str]) -> Wired[ConnectorSettings, ConnectorPorts]:
    """Settings, connector API and ports, built once per container (cold start)."""
    settings = ConnectorSettings.from_env(env)
    return Wired(settings, build_connector_ports(settings))


wiring = Wiring(build)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the jobs; the response lists what each job listed, fetched, skipped and failed."""
    wired = wiring()
    settings, ports = wired.settings, wired.ports
    reports = [r.to_json() for r in retrieve(ports.api, ports.jobs, settings.retrievals_uri)]
    logger.info("retrieval run", extra={"jobs": reports, "engine": settings.engine})
    return {"jobs": reports}
