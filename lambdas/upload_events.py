"""UploadEventsFunction: Transfer Family upload and rename events → fanout, or PARTIAL."""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.settings import FanoutSettings
from ingest.usecases.fanout import ingest_object
from ingest.usecases.upload_outcomes import handle_upload_event
from lambdas.runtime import fanout_ports

logger = Logger()


@functools.cache
def _ports() -> dict[str, Any]:
    """The fanout's ports, built once per container."""
    return fanout_ports(FanoutSettings.from_env(os.environ))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One EventBridge event in; the files it released or marked PARTIAL out."""
    ports = {**_ports()}
    feeds = ports.pop("feeds")()
    ingest = functools.partial(ingest_object, feeds=feeds, **ports)
    result = handle_upload_event(event, ingest=ingest, ledger=ports["ledger"], store=ports["store"])
    logger.info("transfer upload event", extra=result)
    return result
