"""The expected-files check against an in-memory ledger with the real one's conditional
writes: however often it runs between two moments (every hour, now and then, or once), it
ends with the same MISSING and LATE entries and publishes each of their events once."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from ingest.domain.feed_types import Expectation, FeedSet
from ingest.domain.feeds import parse_feeds
from ingest.domain.files import FileEntry
from ingest.domain.notifications import BusEvent
from ingest.usecases.expected import ExpectedPorts, Progress, check_expected

FEEDS = parse_feeds(
    """feeds:
  - name: orders
    match: "inbound/{partner}/orders/*.csv"
    format: csv
    key: {pk: "O#{id}"}
    fields: {id: string}
"""
)
START = datetime(2026, 3, 23, 12, 0, tzinfo=UTC)  # a Monday; Berlin's clocks change on the 29th
DAYS = 10


def feeds(count: int) -> FeedSet:
    expectation = Expectation(
        "cron(0 9 ? * MON-FRI *)", ("acme", "globex"), "Europe/Berlin", count, 1800
    )
    return FeedSet((replace(FEEDS.feeds[0], expected=(expectation,)),))


class Ledger:
    """Files that appear at their received_at, and the check's items, as the real ledger keeps
    them (conditional creates and transitions)."""

    def __init__(self, files: list[FileEntry]) -> None:
        self.files = files
        self.items: dict[str, FileEntry] = {}
        self.progresses: dict[tuple[str, str], Progress] = {}
        self.now = START

    def progress(self, feed: str, ident: str) -> Progress:
        return self.progresses.get((feed, ident), Progress())

    def save_progress(self, feed: str, ident: str, progress: Progress) -> None:
        self.progresses[(feed, ident)] = progress

    def feed_entries(self, feeds: Collection[str]) -> list[FileEntry]:
        arrived = [f for f in self.files if (f.received_at or 0) <= self.now.timestamp()]
        return arrived + list(self.items.values())

    def record_missing(self, entry: FileEntry) -> bool:
        if entry.key in self.items:
            return False
        self.items[entry.key] = entry
        return True

    def mark_late(self, key: str, expectation: dict[str, Any]) -> bool:
        entry = self.items[key]
        if entry.status != "MISSING":
            return False
        self.items[key] = replace(entry, status="LATE", expectation=expectation)
        return True

    def mark_notified(self, key: str, status: str) -> None:
        entry = self.items[key]
        if entry.status == status:
            self.items[key] = replace(
                entry, expectation={**(entry.expectation or {}), "notified": status}
            )


class Bus:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def publish(self, events: Iterable[BusEvent]) -> None:
        self.events.extend((e.detail["key"], e.detail["status"]) for e in events)


def run(
    files: list[FileEntry], count: int, times: list[datetime]
) -> tuple[dict[str, Any], list[Any]]:
    ledger, bus = Ledger(files), Bus()
    ports = ExpectedPorts(feeds=lambda: feeds(count), ledger=ledger, bus=bus)
    for moment in [START, *times]:
        ledger.now = moment
        check_expected(moment, ports)
    outcome = {
        k: (e.status, {n: v for n, v in (e.expectation or {}).items() if n != "notified"})
        for k, e in ledger.items.items()
    }
    return outcome, bus.events


arrivals = st.lists(
    st.tuples(st.sampled_from(["acme", "globex"]), st.integers(1, DAYS * 24 * 60)), max_size=16
)


@settings(max_examples=15, deadline=None)
@given(arrivals, st.integers(1, 2), st.sets(st.integers(1, DAYS * 24 * 12), max_size=40))
def test_the_outcome_does_not_depend_on_how_often_the_check_ran(
    arrived: list[tuple[str, int]], count: int, ticks: set[int]
) -> None:
    files = [
        FileEntry(
            key=f"inbound/{partner}/orders/{i}.csv",
            status="PROCESSED",
            feed="orders",
            received_at=(START + timedelta(minutes=minute)).timestamp(),
        )
        for i, (partner, minute) in enumerate(arrived)
    ]
    end = START + timedelta(days=DAYS, minutes=5)
    hourly = [START + timedelta(hours=i) for i in range(1, DAYS * 24 + 1)] + [end]
    sometimes = [START + timedelta(minutes=5 * t) for t in sorted(ticks)] + [end]
    once, once_events = run(files, count, [end])
    for times in (hourly, sometimes):
        outcome, events = run(files, count, times)
        assert outcome == once
        assert sorted(events) == sorted(once_events)
    assert len(once_events) == len(set(once_events))  # each entry's status told once
    assert {k for k, _ in once_events} == set(once)
    # 8 weekdays' deadlines in 10 days (Mar 24-27, Mar 30-Apr 2), two partners
    assert all(k.split("/")[3] > "2026-03-23" for k in once)
