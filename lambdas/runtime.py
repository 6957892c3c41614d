"""Cold-start wiring shared by the ingestion handlers: settings → clients → the core's ports.

What every handler uses (logger, tracer, counts, :class:`Wiring`) lives in
:mod:`lambdas.function` and is re-exported here. The fanout's wiring (its admission gates and
envelope steps) is :mod:`lambdas.fanout_wiring`, which the processor never imports.
"""

from __future__ import annotations

from ingest.adapters.aws import DEFAULT_REGION, AwsTarget
from ingest.adapters.feeds_source import CachedFeeds
from ingest.adapters.ledger import Ledger
from ingest.adapters.s3 import S3Store
from ingest.settings import CommonSettings
from lambdas.function import (
    CORE_LOGGERS,
    Wired,
    Wiring,
    add_connector_counts,
    add_counts,
    function_logger,
    function_tracer,
)

__all__ = [
    "CORE_LOGGERS",
    "Wired",
    "Wiring",
    "add_connector_counts",
    "add_counts",
    "aws_target",
    "function_logger",
    "function_tracer",
    "store_feeds_ledger",
]


def aws_target(common: CommonSettings) -> AwsTarget:
    return AwsTarget(region=common.region or DEFAULT_REGION, endpoint_url=common.endpoint_url)


def store_feeds_ledger(common: CommonSettings) -> tuple[S3Store, CachedFeeds, Ledger]:
    """The three ports every ingestion function needs."""
    aws = aws_target(common)
    store = S3Store(aws.client("s3"))
    return (
        store,
        CachedFeeds(common.feeds_uri, store),
        Ledger(aws.client("dynamodb"), common.ledger_table),
    )
