"""Core commands: ``ingest feeds validate|push`` and ``ingest reprocess`` (``ingest status``
and ``ingest rejects`` are in :mod:`ingest.cli.status`, ``ingest dlq`` in :mod:`ingest.cli.dlq`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ingest.adapters.feeds_publisher import publish_feeds
from ingest.adapters.feeds_source import CachedFeeds
from ingest.adapters.ledger import Ledger
from ingest.adapters.s3 import S3Store
from ingest.adapters.sqs import SqsQueue
from ingest.cli.context import add_target_arguments, resolve_deployment
from ingest.domain.feed_codec import compiled_location
from ingest.domain.feeds import load_feeds
from ingest.usecases.recovery import requeue_file

FEEDS_KEY = "config/feeds.yaml"


def register(subparsers: Any) -> None:
    feeds = subparsers.add_parser("feeds", help="validate or publish the feeds file")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    validate = feeds_sub.add_parser("validate", help="check a feeds file and list its feeds")
    validate.add_argument("file", type=Path)
    validate.set_defaults(func=cmd_feeds_validate)
    push = feeds_sub.add_parser(
        "push",
        help=f"validate a feeds file and publish it to s3://<bucket>/{FEEDS_KEY}, with its "
        f"compiled form (what the functions read) at {compiled_location(FEEDS_KEY)}",
    )
    push.add_argument("file", type=Path)
    add_target_arguments(push)
    push.set_defaults(func=cmd_feeds_push)

    reprocess = subparsers.add_parser(
        "reprocess", help="re-queue the chunks of FAILED or stuck files that were never counted"
    )
    reprocess.add_argument("keys", nargs="+", metavar="KEY")
    add_target_arguments(reprocess)
    reprocess.set_defaults(func=cmd_reprocess)


def cmd_feeds_validate(args: argparse.Namespace) -> int:
    feeds = load_feeds(args.file)
    for feed in feeds.feeds:
        print(f"{feed.name}: {feed.format} files matching {feed.match} ({len(feed.fields)} fields)")
    return 0


def cmd_feeds_push(args: argparse.Namespace) -> int:
    text = args.file.read_text(encoding="utf-8")
    load_feeds(args.file)  # refuse an invalid file before resolving the stack
    deployment = resolve_deployment(args)
    bucket = deployment.resource("bucket")
    uri = f"s3://{bucket}/{FEEDS_KEY}"
    feeds = publish_feeds(deployment.aws.client("s3"), uri, text, source=str(args.file))
    print(
        f"published {args.file} ({len(feeds.feeds)} feeds) to {uri}, "
        f"compiled to s3://{bucket}/{compiled_location(FEEDS_KEY)}"
    )
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args)
    bucket = deployment.resource("bucket")
    store = S3Store(deployment.aws.client("s3"))
    feeds = CachedFeeds(f"s3://{bucket}/{FEEDS_KEY}", store)()
    queue = SqsQueue(deployment.aws.client("sqs"), deployment.resource("queue_url"))
    ledger = Ledger(deployment.aws.client("dynamodb"), deployment.resource("ledger_table"))
    for key in args.keys:
        result = requeue_file(
            key, bucket=bucket, feeds=feeds, store=store, queue=queue, ledger=ledger
        )
        print(f"{key}: re-queued {len(result.requeued)} of {result.chunks} chunks")
    return 0
