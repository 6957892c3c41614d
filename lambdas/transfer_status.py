"""TransferStatusFunction: SFTP connector file events → ledger status and retrieval claims."""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_lambda_powertools import Logger

from connectors.jobs import JobPorts
from connectors.status import StatusStore
from connectors.usecases import ConnectorSettings, consume_status_event
from connectors.wiring import build_api
from ingest.adapters.aws import AwsTarget

logger = Logger()


@functools.cache
def _wiring() -> tuple[StatusStore, Any, JobPorts]:
    """Store, connector API and ports, built once per container (cold start)."""
    settings = ConnectorSettings.from_env(os.environ)
    aws = AwsTarget(region=settings.region, endpoint_url=settings.endpoint_url)
    db = aws.client("dynamodb")
    ports = JobPorts(
        s3=aws.client("s3"), db=db, table=settings.ledger_table, bucket=settings.bucket
    )
    store = StatusStore(db, settings.ledger_table)
    return store, build_api(aws, settings.engine, settings.ledger_table), ports


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One EventBridge event in, the stored status out (InvalidEventError for other events)."""
    store, api, ports = _wiring()
    outcome = consume_status_event(event, store, api, ports)
    logger.info("connector file status", extra=outcome)
    return outcome
