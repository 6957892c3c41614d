"""UploadEventsFunction: Transfer Family upload completed/failed events → fanout or PARTIAL."""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.adapters import SqsQueue
from ingest.fanout import ingest_object
from ingest.ledger import Ledger
from ingest.settings import FanoutSettings
from ingest.uploads import handle_upload_event
from lambdas.runtime import aws_target, store_feeds_ledger

logger = Logger()


@functools.cache
def _ports() -> tuple[Any, Ledger, dict[str, Any]]:
    """Feeds source, ledger and the fanout's ports, built once per container."""
    settings = FanoutSettings.from_env(os.environ)
    store, feeds, ledger = store_feeds_ledger(settings.common)
    queue = SqsQueue(aws_target(settings.common).client("sqs"), settings.queue_url)
    fanout = {
        "store": store,
        "queue": queue,
        "ledger": ledger,
        "default_chunk_size": settings.chunk_size,
    }
    return feeds, ledger, fanout


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One EventBridge event in; the files it released or marked PARTIAL out."""
    feeds, ledger, fanout = _ports()
    ingest = functools.partial(ingest_object, feeds=feeds(), **fanout)
    result = handle_upload_event(event, ingest=ingest, ledger=ledger)
    logger.info("transfer upload event", extra=result)
    return result
