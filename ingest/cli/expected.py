"""``ingest expected``: the coming deadlines of the feeds' ``expected:`` schedules, and the
recent MISSING and LATE ones (docs/operations.md, "Expected files")."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from ingest.adapters.feeds_source import CachedFeeds
from ingest.adapters.ledger_expected import ExpectedItems
from ingest.adapters.s3 import S3Store
from ingest.cli.context import add_target_arguments, resolve_deployment
from ingest.cli.core import FEEDS_KEY
from ingest.cli.output import print_table
from ingest.domain.expected import Schedule, deliveries, iso_utc, partners_for, schedules
from ingest.domain.files import FileEntry, FileStatus
from ingest.domain.schedules import zone
from ingest.usecases.inspection import parse_since


def register(subparsers: Any) -> None:
    expected = subparsers.add_parser(
        "expected", help="the feeds' coming deadlines and their recent MISSING and LATE files"
    )
    add_target_arguments(expected)
    expected.add_argument("--feed", help="only this feed's schedules")
    expected.add_argument("--partner", help="only what this partner is expected to send")
    expected.add_argument(
        "--next", type=int, default=3, metavar="N", help="coming deadlines per schedule (3)"
    )
    expected.add_argument(
        "--since", default="7d", help="misses of deadlines since: 90m, 2h, 7d (default), a date"
    )
    expected.add_argument("--json", action="store_true", help="print one JSON object")
    expected.set_defaults(func=cmd_expected)


def cmd_expected(args: argparse.Namespace) -> int:
    now = datetime.fromtimestamp(time.time(), UTC)
    deployment = resolve_deployment(args)
    bucket = deployment.resource("bucket")
    feeds = CachedFeeds(f"s3://{bucket}/{FEEDS_KEY}", S3Store(deployment.aws.client("s3")))()
    found = [s for s in schedules(feeds.feeds) if args.feed in (None, s.feed)]
    items = ExpectedItems(deployment.aws.client("dynamodb"), deployment.resource("ledger_table"))
    entries = items.feed_entries({s.feed for s in found}) if found else []
    report = expected_report(
        found,
        entries,
        now=now,
        partner=args.partner,
        upcoming=max(args.next, 0),
        since=parse_since(args.since, now=now.timestamp()),
    )
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print_table(
        [
            [u["feed"], u["deadline_local"], u["due_at"], u["count"], ", ".join(u["partners"])]
            for u in report["upcoming"]
        ],
        ["FEED", "DEADLINE", "CHECKED AT (UTC)", "FILES", "PARTNERS"],
        empty="no expected: schedules" + (f" for feed {args.feed!r}" if args.feed else ""),
    )
    print()
    print_table(
        [
            [
                r["status"],
                r["feed"],
                r["partner"],
                r["deadline"],
                r["received"],
                r["expected"],
                ", ".join(r["late_files"]),
            ]
            for r in report["recent"]
        ],
        ["STATUS", "FEED", "PARTNER", "DEADLINE (UTC)", "RECEIVED", "EXPECTED", "LATE FILES"],
        empty="no missing or late files since " + args.since,
    )
    return 0


def expected_report(
    found: list[Schedule],
    entries: list[FileEntry],
    *,
    now: datetime,
    partner: str | None,
    upcoming: int,
    since: float,
) -> dict[str, Any]:
    """``ingest expected --json``: ``{"upcoming": [...], "recent": [...]}`` (docs/contracts.md)."""
    files = deliveries(entries)
    coming = []
    for schedule in found:
        expected = partners_for(schedule, files, now)
        if partner is not None and partner not in expected:
            continue
        e, tz = schedule.expectation, zone(schedule.expectation.tz)
        for deadline in schedule.upcoming(now, upcoming):
            coming.append(
                {
                    "feed": schedule.feed,
                    "schedule": e.schedule,
                    "tz": e.tz,
                    "deadline": iso_utc(deadline),
                    "deadline_local": deadline.astimezone(tz).isoformat(),
                    "due_at": iso_utc(deadline + schedule.grace),
                    "count": e.count,
                    "grace": e.grace_seconds,
                    "all_partners": e.partners is None,
                    "partners": [partner] if partner is not None else list(expected),
                }
            )
    coming.sort(key=lambda u: (u["deadline"], u["feed"]))
    recent = [
        {
            "key": entry.key,
            "status": entry.status,
            "feed": entry.feed,
            "partner": entry.partner,
            "deadline": (entry.expectation or {}).get("deadline"),
            "expected": (entry.expectation or {}).get("expected"),
            "received": (entry.expectation or {}).get("received"),
            "late_files": list((entry.expectation or {}).get("late_files") or []),
            "updated_at": iso_utc(datetime.fromtimestamp(entry.updated_at or 0, UTC)),
        }
        for entry in entries
        if entry.status in (FileStatus.MISSING, FileStatus.LATE)
        and (partner is None or entry.partner == partner)
        and (entry.received_at or 0) >= since
    ]
    recent.sort(key=lambda r: (r["deadline"] or "", r["key"]), reverse=True)
    return {"upcoming": coming, "recent": recent}
