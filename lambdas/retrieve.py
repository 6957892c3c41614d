"""RetrieveFunction: EventBridge schedule → every retrieval job in retrievals.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics

from connectors.jobs import JobReport
from connectors.retrieval import retrieve
from connectors.usecases import ConnectorSettings
from lambdas.function import (
    Wired,
    Wiring,
    add_connector_counts,
    add_counts,
    function_logger,
    function_tracer,
)

if TYPE_CHECKING:
    from connectors.wiring import ConnectorPorts

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()


def build(env: Mapping[str, str]) -> Wired[ConnectorSettings, ConnectorPorts]:
    """The function's settings and ports."""
    # Imported here, not at the top: the connector service brings asyncssh and cryptography,
    # which load at the first invocation rather than the import (docs/benchmarks.md).
    from connectors.wiring import build_connector_ports  # noqa: PLC0415

    settings = ConnectorSettings.from_env(env)
    return Wired(settings, build_connector_ports(settings))


wiring = Wiring(build)
run = tracer.capture_method(capture_response=False)(retrieve)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the jobs; the response lists what each job listed, fetched, skipped and failed."""
    wired = wiring()
    settings, ports = wired.settings, wired.ports
    reports = run(ports.api, ports.jobs, settings.retrievals_uri)
    jobs = [r.to_json() for r in reports]
    logger.info("retrieval run", extra={"jobs": jobs, "engine": settings.engine})
    totals, by_connector = run_counts(reports)
    add_counts(metrics, totals)
    for connector_id, counts in by_connector.items():
        add_connector_counts(metrics, connector_id, counts)
    return {"jobs": jobs}


def run_counts(reports: list[JobReport]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """The run's metrics, in all and by connector.

    ``TransfersStarted``: files whose transfer this run started (each ends as one
    TransfersCompleted or TransfersFailed of the transfer-status function);
    ``RetrievalsFailed``: jobs that could not list, claim or start (no transfer event follows).
    """
    totals = {"TransfersStarted": 0, "RetrievalsFailed": 0}
    by_connector: dict[str, dict[str, int]] = {}
    for report in reports:
        counts = by_connector.setdefault(report.connector_id, dict.fromkeys(totals, 0))
        for c in (totals, counts):
            c["TransfersStarted"] += report.claimed
            c["RetrievalsFailed"] += int(report.error is not None)
    return totals, by_connector
