"""``ingest dlq count|list|redrive``: the ingest queue's dead-letter queue."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from msgspec.structs import asdict

from ingest.adapters.ledger import Ledger
from ingest.adapters.sqs import DeadLetterQueue, SqsQueue
from ingest.cli.context import Deployment, add_target_arguments, resolve_deployment
from ingest.cli.output import print_table
from ingest.usecases.inspection import age, dead_letter_report, iso_time
from ingest.usecases.recovery import redrive_dead_letters


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser("dlq", help="inspect or redrive the dead-letter queue")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    dlq_count = dlq_sub.add_parser("count", help="messages waiting in the DLQ")
    add_target_arguments(dlq_count)
    dlq_count.set_defaults(func=cmd_dlq_count)

    listing = dlq_sub.add_parser(
        "list", help="each DLQ message: file, chunk, deliveries, when it failed, the error"
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    add_target_arguments(listing)
    listing.set_defaults(func=cmd_dlq_list)

    redrive = dlq_sub.add_parser("redrive", help="move DLQ messages back to the ingest queue")
    which = redrive.add_mutually_exclusive_group()
    which.add_argument("--file", metavar="KEY", help="only this file's chunks")
    which.add_argument("--all", action="store_true", help="every message (the default)")
    redrive.add_argument("--limit", type=int, default=None, help="at most this many messages")
    add_target_arguments(redrive)
    redrive.set_defaults(func=cmd_dlq_redrive)


def dead_letters(deployment: Deployment) -> DeadLetterQueue:
    sqs = deployment.aws.client("sqs")
    return DeadLetterQueue(
        sqs, deployment.resource("dlq_url"), SqsQueue(sqs, deployment.resource("queue_url"))
    )


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


def cmd_dlq_list(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args)
    ledger = Ledger(deployment.aws.client("dynamodb"), deployment.resource("ledger_table"))
    report = dead_letter_report(dead_letters(deployment).peek(), ledger)
    if args.json:
        rows = [
            {
                **asdict(info),
                "first_failure_at": iso_time(info.first_failure_at),
                "last_failure_at": iso_time(info.last_failure_at),
            }
            for info in report
        ]
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    now = time.time()
    print_table(
        [
            [
                info.key,
                info.chunk,
                info.receive_count,
                age(info.first_failure_at, now=now),
                age(info.last_failure_at, now=now),
                info.last_error,
            ]
            for info in report
        ],
        ["KEY", "CHUNK", "DELIVERIES", "FIRST FAILED", "LAST FAILED", "LAST ERROR"],
        empty="the dead-letter queue is empty",
    )
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args)
    ledger = Ledger(deployment.aws.client("dynamodb"), deployment.resource("ledger_table"))
    moved = redrive_dead_letters(
        dead_letters(deployment), ledger=ledger, limit=args.limit, key=args.file
    )
    which = f" of {args.file}" if args.file else ""
    print(f"moved {moved} message(s){which} back to the ingest queue")
    return 0
