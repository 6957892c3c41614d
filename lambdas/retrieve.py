"""RetrieveFunction: EventBridge schedule → every retrieval job in retrievals.yaml."""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_lambda_powertools import Logger

from connectors.jobs import JobPorts
from connectors.usecases import ConnectorSettings, retrieve
from connectors.wiring import build_api
from ingest.adapters.aws import AwsTarget

logger = Logger()


@functools.cache
def _wiring() -> tuple[ConnectorSettings, Any, JobPorts]:
    """Settings, connector API and ports, built once per container (cold start)."""
    settings = ConnectorSettings.from_env(os.environ)
    aws = AwsTarget(region=settings.region, endpoint_url=settings.endpoint_url)
    ports = JobPorts(
        s3=aws.client("s3"),
        db=aws.client("dynamodb"),
        table=settings.ledger_table,
        bucket=settings.bucket,
    )
    return settings, build_api(aws, settings.engine, settings.ledger_table), ports


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the jobs; the response lists what each job listed, fetched, skipped and failed."""
    settings, api, ports = _wiring()
    reports = [r.to_json() for r in retrieve(api, ports, settings.retrievals_uri)]
    logger.info("retrieval run", extra={"jobs": reports, "engine": settings.engine})
    return {"jobs": reports}
