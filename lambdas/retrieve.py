"""RetrieveFunction: EventBridge schedule → every retrieval job in retrievals.yaml."""

from __future__ import annotations

from typing import Any

from connectors.usecases import retrieve
from lambdas.runtime import Wiring, build_connector_function, function_logger

logger = function_logger()


wiring = Wiring(build_connector_function)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the jobs; the response lists what each job listed, fetched, skipped and failed."""
    wired = wiring()
    settings, ports = wired.settings, wired.ports
    reports = [r.to_json() for r in retrieve(ports.api, ports.jobs, settings.retrievals_uri)]
    logger.info("retrieval run", extra={"jobs": reports, "engine": settings.engine})
    return {"jobs": reports}
