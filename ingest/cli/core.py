"""Core commands: ``ingest feeds validate|push``, ``ingest reprocess`` and ``ingest dlq``
(``ingest status`` and ``ingest rejects`` are in :mod:`ingest.cli.status`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ingest.adapters.feeds_source import CachedFeeds
from ingest.adapters.ledger import Ledger
from ingest.adapters.s3 import S3Store
from ingest.adapters.sqs import DeadLetterQueue, SqsQueue
from ingest.cli.context import add_target_arguments, resolve_deployment
from ingest.domain.feeds import load_feeds
from ingest.usecases.recovery import redrive_dead_letters, requeue_file

FEEDS_KEY = "config/feeds.yaml"


def register(subparsers: Any) -> None:
    feeds = subparsers.add_parser("feeds", help="validate or publish the feeds file")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    validate = feeds_sub.add_parser("validate", help="check a feeds file and list its feeds")
    validate.add_argument("file", type=Path)
    validate.set_defaults(func=cmd_feeds_validate)
    push = feeds_sub.add_parser(
        "push", help=f"validate a feeds file and upload it to s3://<bucket>/{FEEDS_KEY}"
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

    dlq = subparsers.add_parser("dlq", help="inspect or redrive the dead-letter queue")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_count = dlq_sub.add_parser("count", help="messages waiting in the DLQ")
    add_target_arguments(dlq_count)
    dlq_count.set_defaults(func=cmd_dlq_count)
    redrive = dlq_sub.add_parser("redrive", help="move DLQ messages back to the ingest queue")
    redrive.add_argument("--limit", type=int, default=None)
    add_target_arguments(redrive)
    redrive.set_defaults(func=cmd_dlq_redrive)


def cmd_feeds_validate(args: argparse.Namespace) -> int:
    feeds = load_feeds(args.file)
    for feed in feeds.feeds:
        print(f"{feed.name}: {feed.format} files matching {feed.match} ({len(feed.fields)} fields)")
    return 0


def cmd_feeds_push(args: argparse.Namespace) -> int:
    load_feeds(args.file)  # refuse to publish an invalid file
    deployment = resolve_deployment(args)
    bucket = deployment.resource("bucket")
    deployment.aws.client("s3").put_object(
        Bucket=bucket,
        Key=FEEDS_KEY,
        Body=args.file.read_bytes(),
        ContentType="application/yaml",
    )
    print(f"published {args.file} to s3://{bucket}/{FEEDS_KEY}")
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


def cmd_dlq_count(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args)
    attrs = deployment.aws.client("sqs").get_queue_attributes(
        QueueUrl=deployment.resource("dlq_url"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    print(
        f"{attrs['ApproximateNumberOfMessages']} waiting, "
        f"{attrs['ApproximateNumberOfMessagesNotVisible']} in flight"
    )
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args)
    sqs = deployment.aws.client("sqs")
    dlq = DeadLetterQueue(
        sqs, deployment.resource("dlq_url"), SqsQueue(sqs, deployment.resource("queue_url"))
    )
    ledger = Ledger(deployment.aws.client("dynamodb"), deployment.resource("ledger_table"))
    moved = redrive_dead_letters(dlq, ledger=ledger, limit=args.limit)
    print(f"moved {moved} message(s) back to the ingest queue")
    return 0
