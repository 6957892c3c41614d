"""Cold-start wiring shared by the handlers: settings → clients → the core's ports."""

from __future__ import annotations

from ingest.adapters import S3Store
from ingest.aws import AwsTarget
from ingest.feeds_source import CachedFeeds
from ingest.ledger import Ledger
from ingest.settings import CommonSettings


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
