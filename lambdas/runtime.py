"""Cold-start wiring shared by the handlers: settings → clients → the core's ports."""

from __future__ import annotations

from typing import Any

from ingest.adapters.aws import AwsTarget
from ingest.adapters.feeds_source import CachedFeeds
from ingest.adapters.ledger import Ledger
from ingest.adapters.s3 import S3Store
from ingest.adapters.sqs import SqsQueue
from ingest.settings import CommonSettings, FanoutSettings
from ingest.usecases.fanout import held_by_role


def aws_target(common: CommonSettings) -> AwsTarget:
    return AwsTarget(region=common.region or "us-east-1", endpoint_url=common.endpoint_url)


def store_feeds_ledger(common: CommonSettings) -> tuple[S3Store, CachedFeeds, Ledger]:
    """The three ports every ingestion function needs."""
    aws = aws_target(common)
    store = S3Store(aws.client("s3"))
    return (
        store,
        CachedFeeds(common.feeds_uri, store),
        Ledger(aws.client("dynamodb"), common.ledger_table),
    )


def fanout_ports(settings: FanoutSettings) -> dict[str, Any]:
    """``ingest_object``'s keyword arguments, with ``feeds`` as the cached source to call."""
    store, feeds, ledger = store_feeds_ledger(settings.common)
    return {
        "store": store,
        "feeds": feeds,
        "ledger": ledger,
        "queue": SqsQueue(aws_target(settings.common).client("sqs"), settings.queue_url),
        "default_chunk_size": settings.chunk_size,
        "holds_upload": held_by_role(settings.transfer_role_id),
    }
