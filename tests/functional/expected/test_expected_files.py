"""Expected files on moto, the clock driven by the test: a deadline with no file is MISSING
(its ledger entry, its event through EventBridge to SQS, its metric), a file before the
deadline is nothing, a late file is LATE, Berlin's two DST changes, ``"*"`` partners, and a
rerun or a retry makes nothing twice (fixtures/feeds-expected.yaml)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from msgspec.structs import replace
from support_aws import fake_aws_env
from support_emf import assert_emitted_as_documented, emf_points, totals, use_function_settings

from ingest.adapters.event_bus import EventBus
from ingest.adapters.ledger import Ledger
from ingest.adapters.ledger_expected import ExpectedItems
from ingest.domain.feeds import FeedSet, load_feeds
from ingest.domain.files import FileEntry
from ingest.usecases.expected import CheckReport, ExpectedPorts, check_expected
from ingest_local.lambda_service import LambdaContext
from ingest_local.tables import create_pk_sk_table

FEEDS = Path(__file__).resolve().parents[3] / "fixtures" / "feeds-expected.yaml"
TABLE = "ledger"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass
class World:
    """The ledger, the bus (a rule on the default bus sends sftp-ingest's events to a queue)
    and the check's ports, on moto."""

    ddb: Any
    sqs: Any
    queue_url: str
    ports: ExpectedPorts
    feeds: FeedSet

    def deliver(self, key: str, feed: str, at: str) -> None:
        """A file fanout registered at ``at`` (its ledger entry, as fanout writes it)."""
        ledger = Ledger(self.ddb, TABLE, clock=lambda: utc(at).timestamp())
        ledger.start_file(key=key, feed=feed, version=f'"{key}"', etag=f'"{key}"', size=1, chunks=1)

    def check(self, at: str) -> CheckReport:
        return check_expected(utc(at), self.ports)

    def entry(self, key: str) -> FileEntry | None:
        return Ledger(self.ddb, TABLE).get_file(key)

    def events(self) -> list[dict[str, Any]]:
        """Every event the queue got since the last call."""
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    fake_aws_env(monkeypatch)
    with mock_aws():
        ddb = boto3.client("dynamodb")
        create_pk_sk_table(ddb, TABLE)
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events")
        events.put_rule(Name="sftp-ingest", EventPattern=json.dumps({"source": ["sftp-ingest"]}))
        events.put_targets(Rule="sftp-ingest", Targets=[{"Id": "q", "Arn": arn}])
        feeds = load_feeds(FEEDS)
        ports = ExpectedPorts(
            feeds=lambda: feeds, ledger=ExpectedItems(ddb, TABLE), bus=EventBus(events)
        )
        yield World(ddb, sqs, url, ports, feeds)


MONDAY = "2026-12-07"  # 09:00 in Berlin (CET) is 08:00 UTC; with 30 minutes' grace, 08:30


def test_a_deadline_without_a_file_is_missing_with_its_event_and_one_before_is_nothing(
    world: World,
) -> None:
    assert world.check(f"{MONDAY}T06:00:00Z").deadlines == 0  # first sight: from now on
    world.deliver("inbound/acme/orders/mon.csv", "orders", f"{MONDAY}T07:59:00Z")
    assert world.check(f"{MONDAY}T08:29:00Z").missing == []  # the grace has not passed
    report = world.check(f"{MONDAY}T08:31:00Z")
    key = f"expected/orders/globex/{MONDAY}T08:00:00Z"
    assert report.missing == [key] and report.deadlines == 1  # acme's file was on time
    entry = world.entry(key)
    assert entry is not None and entry.status == "MISSING" and entry.partner == "globex"
    assert entry.feed == "orders" and entry.expectation is not None
    assert entry.expectation["expected"] == 1 and entry.expectation["received"] == 0
    assert entry.expectation["window_start"] == "2026-12-04T08:30:00Z"  # Friday's deadline
    (event,) = world.events()
    assert event["source"] == "sftp-ingest"
    assert event["detail-type"] == "sftp-ingest Expected File Missing"
    detail = event["detail"]
    assert {k: detail[k] for k in ("feed", "partner", "deadline", "expected", "received")} == {
        "feed": "orders",
        "partner": "globex",
        "deadline": f"{MONDAY}T08:00:00Z",
        "expected": 1,
        "received": 0,
    }
    assert detail["key"] == key and len(detail["event-id"]) == 32
    assert detail["time-zone"] == "Europe/Berlin" and detail["grace-seconds"] == 1800
    assert world.entry(f"expected/orders/acme/{MONDAY}T08:00:00Z") is None
    # ingest status --json lists it like a file, with its deadline
    from ingest.cli.status import status_json

    shown = status_json(entry)
    assert (shown["status"], shown["partner"], shown["feed"]) == ("MISSING", "globex", "orders")
    assert shown["expectation"]["deadline"] == f"{MONDAY}T08:00:00Z"
    assert "notified" not in shown["expectation"]


def test_a_rerun_and_a_retry_make_nothing_twice(world: World) -> None:
    world.check(f"{MONDAY}T06:00:00Z")
    first = world.check(f"{MONDAY}T08:31:00Z")
    assert len(first.missing) == 2 and len(world.events()) == 2
    again = world.check(f"{MONDAY}T08:31:00Z")
    later = world.check(f"{MONDAY}T08:36:00Z")
    assert (again.missing, later.missing, again.events + later.events) == ([], [], 0)
    assert world.events() == []
    # a run that died after writing the entries and before publishing: its retry publishes
    # them (from the ledger), once, with the same event ids; then nothing more
    key = f"expected/orders/acme/{MONDAY}T08:00:00Z"
    world.ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"FILE#{key}"}, "sk": {"S": "FILE"}},
        UpdateExpression="REMOVE expectation.notified",
    )
    retry = world.check(f"{MONDAY}T08:41:00Z")
    (event,) = world.events()
    assert retry.missing == [] and event["detail"]["key"] == key
    assert world.check(f"{MONDAY}T08:46:00Z").events == 0 and world.events() == []


def test_a_late_file_makes_the_entry_late_and_is_not_counted_for_the_next_deadline(
    world: World,
) -> None:
    world.check(f"{MONDAY}T06:00:00Z")
    world.deliver("inbound/acme/orders/mon.csv", "orders", f"{MONDAY}T07:00:00Z")
    world.check(f"{MONDAY}T08:31:00Z")
    world.events()
    late = "inbound/globex/orders/mon.csv"
    world.deliver(late, "orders", f"{MONDAY}T10:15:00Z")
    report = world.check(f"{MONDAY}T10:20:00Z")
    key = f"expected/orders/globex/{MONDAY}T08:00:00Z"
    assert report.late == [key]
    entry = world.entry(key)
    assert entry is not None and entry.status == "LATE"
    assert entry.expectation is not None and entry.expectation["late_files"] == [late]
    assert entry.expectation["received"] == 1
    (event,) = world.events()
    assert event["detail-type"] == "sftp-ingest Expected File Late"
    assert event["detail"]["late-files"] == [late] and event["detail"]["received"] == 1
    assert world.check(f"{MONDAY}T10:25:00Z").late == []  # once
    # Tuesday: the late file was Monday's; globex sent nothing for Tuesday
    world.deliver("inbound/acme/orders/tue.csv", "orders", "2026-12-08T07:00:00Z")
    tuesday = world.check("2026-12-08T08:31:00Z")
    assert tuesday.missing == ["expected/orders/globex/2026-12-08T08:00:00Z"]


@pytest.mark.parametrize(
    ("day", "deadline_utc", "on_time", "too_late"),
    [
        # spring: from Monday 30 March 2026 09:00 in Berlin is 07:00 UTC (CEST)
        ("2026-03-30", "07:00", "07:25", "07:35"),
        # autumn: from Monday 26 October 2026 09:00 in Berlin is 08:00 UTC again (CET)
        ("2026-10-26", "08:00", "08:25", "08:35"),
    ],
)
def test_deadlines_follow_berlin_across_both_dst_changes(
    world: World, day: str, deadline_utc: str, on_time: str, too_late: str
) -> None:
    # the Friday before is on the other side of the change
    friday = {"2026-03-30": "2026-03-27", "2026-10-26": "2026-10-23"}[day]
    world.check(f"{friday}T12:00:00Z")
    world.deliver(f"inbound/acme/orders/{day}.csv", "orders", f"{day}T{on_time}:00Z")
    world.deliver(f"inbound/globex/orders/{day}.csv", "orders", f"{day}T{too_late}:00Z")
    report = world.check(f"{day}T12:00:00Z")
    # Monday's deadline only (the weekend has none), at its UTC time of that season
    assert report.missing == [f"expected/orders/globex/{day}T{deadline_utc}:00Z"]
    assert report.late == report.missing  # its file came 5 minutes after the grace
    (missing, late) = world.events()
    assert missing["detail"]["deadline"] == f"{day}T{deadline_utc}:00Z"
    assert late["detail-type"] == "sftp-ingest Expected File Late"


def test_every_partner_that_has_delivered_is_expected_with_a_star(world: World) -> None:
    # stock: partners "*", daily at 18:00 UTC, 2 files, 1 hour's grace
    world.deliver("inbound/initech/stock/old.csv", "stock", "2026-11-20T10:00:00Z")
    world.check("2026-12-01T12:00:00Z")
    for name in ("a1", "a2"):
        world.deliver(f"inbound/acme/stock/{name}.csv", "stock", "2026-12-01T17:00:00Z")
    world.deliver("inbound/initech/stock/b1.csv", "stock", "2026-12-01T18:30:00Z")  # in grace
    world.deliver("inbound/newco/stock/n1.csv", "stock", "2026-12-01T19:30:00Z")  # after it
    world.deliver("inbound/acme/orders/x.csv", "orders", "2026-12-01T17:00:00Z")  # another feed
    report = world.check("2026-12-01T19:45:00Z")
    assert report.missing == ["expected/stock/initech/2026-12-01T18:00:00Z"]
    (event,) = [e for e in world.events() if e["detail"]["feed"] == "stock"]
    assert (event["detail"]["expected"], event["detail"]["received"]) == (2, 1)


def test_the_handler_checks_its_scheduled_time_and_emits_files_missing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas import expected_files

    service = use_function_settings(monkeypatch, expected_files, "lambdas.expected_files.handler")
    wired = expected_files.build(
        {"LANDING_BUCKET": "b", "LEDGER_TABLE": TABLE, "FEEDS_URI": "s3://b/config/feeds.yaml"}
    )
    expected_files.wiring.use(replace(wired, ports=world.ports))
    try:
        context = LambdaContext("ExpectedFilesFunction")
        outputs = []
        for at in (f"{MONDAY}T06:00:00Z", f"{MONDAY}T08:35:00Z"):
            event = {"detail-type": "Scheduled Event", "source": "aws.events", "time": at}
            stdout = io.StringIO()
            with redirect_stdout(stdout):
                outputs.append(expected_files.handler(event, context))
    finally:
        expected_files.wiring.reset()
    assert outputs[0]["missing"] == [] and len(outputs[1]["missing"]) == 2
    points = emf_points(stdout.getvalue())
    assert totals(points, service=service) == {"FilesMissing": 2, "FilesLate": 0}
    assert_emitted_as_documented(points, service)


def test_ingest_expected_shows_coming_deadlines_and_recent_misses(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.adapters.aws import AwsTarget
    from ingest.cli import expected as command
    from ingest.cli import main
    from ingest.cli.context import Deployment

    world.check(f"{MONDAY}T06:00:00Z")
    world.check(f"{MONDAY}T08:31:00Z")  # acme and globex MISSING
    world.deliver("inbound/initech/stock/s.csv", "stock", f"{MONDAY}T07:00:00Z")
    deployment = Deployment(AwsTarget(region="us-east-1"), {"bucket": "b", "ledger_table": TABLE})
    monkeypatch.setattr(command, "resolve_deployment", lambda args: deployment)
    monkeypatch.setattr(command, "CachedFeeds", lambda uri, store: lambda: world.feeds)
    monkeypatch.setattr(command.time, "time", lambda: utc(f"{MONDAY}T09:00:00Z").timestamp())
    assert main(["expected", "--json", "--partner", "globex", "--since", "2026-12-01"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [u["deadline"] for u in report["upcoming"]] == [
        "2026-12-08T08:00:00Z",
        "2026-12-09T08:00:00Z",
        "2026-12-10T08:00:00Z",
    ]
    assert report["upcoming"][0]["deadline_local"] == "2026-12-08T09:00:00+01:00"
    assert report["upcoming"][0]["due_at"] == "2026-12-08T08:30:00Z"
    assert [(r["status"], r["partner"]) for r in report["recent"]] == [("MISSING", "globex")]
    assert main(["expected", "--json", "--feed", "stock"]) == 0
    stock = json.loads(capsys.readouterr().out)
    assert {u["feed"] for u in stock["upcoming"]} == {"stock"}
    assert stock["upcoming"][0]["partners"] == ["initech"] and stock["recent"] == []
    assert main(["expected"]) == 0
    table = capsys.readouterr().out
    assert "MISSING" in table and "2026-12-08T09:00:00+01:00" in table
