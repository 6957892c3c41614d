"""The expected-files rules without AWS (ingest/domain/expected.py): windows tile time, so a
file counts for exactly one deadline; ``"*"`` is the partners known before a window ends; the
events' detail; a scheduled event's time as the check's now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.domain.expected import (
    Delivery,
    Schedule,
    event_id,
    expectation_event,
    expectation_record,
    expected_key,
    in_window,
    partners_for,
    scheduled_time,
)
from ingest.domain.feed_types import Expectation
from ingest.domain.files import FileEntry

WEEKDAYS = Schedule(
    "orders", Expectation("cron(0 9 ? * MON-FRI *)", None, "Europe/Berlin", 1, 1800)
)
START = datetime(2026, 3, 1, tzinfo=UTC)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 60 * 24 * 60 - 1), max_size=40))
def test_each_file_counts_for_exactly_one_deadline_across_dst(minutes: list[int]) -> None:
    # two months over Berlin's spring change, files at any minute
    files = [
        Delivery(
            f"inbound/acme/orders/{i}.csv",
            "orders",
            "acme",
            (START + timedelta(minutes=m)).timestamp(),
        )
        for i, m in enumerate(minutes)
    ]
    deadlines = WEEKDAYS.due(START + timedelta(days=70), START, limit=100)
    windows = [WEEKDAYS.window(d) for d in deadlines]
    for (_, end), (start, _) in pairwise(windows):
        assert end == start  # no gap, no overlap
    for deadline, (_, end) in zip(deadlines, windows, strict=True):
        assert end - deadline == timedelta(minutes=30)
        assert WEEKDAYS.following_window(deadline)[0] == end
    counted = [d.key for w in windows for d in in_window(files, "orders", "acme", w)]
    inside = [
        d.key
        for d in files
        if windows[0][0].timestamp() <= d.received_at < windows[-1][1].timestamp()
    ]
    assert sorted(counted) == sorted(inside)  # each once


def test_star_partners_are_those_with_a_file_of_the_feed_before_the_window_ends() -> None:
    end = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
    files = [
        Delivery(
            "inbound/acme/orders/a.csv", "orders", "acme", (end - timedelta(days=30)).timestamp()
        ),
        Delivery(
            "inbound/newco/orders/n.csv",
            "orders",
            "newco",
            (end + timedelta(minutes=1)).timestamp(),
        ),
        Delivery(
            "inbound/other/stock/s.csv", "stock", "other", (end - timedelta(days=1)).timestamp()
        ),
    ]
    assert partners_for(WEEKDAYS, files, end) == ("acme",)
    named = Schedule("orders", Expectation("cron(0 9 * * ? *)", ("x", "y")))
    assert partners_for(named, files, end) == ("x", "y")


def test_the_missing_event_names_the_deadline_and_has_one_id_per_entry_and_status() -> None:
    deadline = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    key = expected_key("orders", "globex", deadline)
    assert key == "expected/orders/globex/2026-12-07T08:00:00Z"
    record = expectation_record(WEEKDAYS, deadline, received=0)
    entry = FileEntry(key=key, status="MISSING", feed="orders", expectation=record)
    event = expectation_event(entry)
    assert event.detail_type == "sftp-ingest Expected File Missing"
    assert event.detail["event-id"] == event_id(key, "MISSING") != event_id(key, "LATE")
    assert event.detail["window-start"] == "2026-12-04T08:30:00Z"  # Friday 09:00 + grace
    assert "late-files" not in event.detail
    late = FileEntry(
        key=key, status="LATE", feed="orders", expectation={**record, "late_files": ["k"]}
    )
    assert expectation_event(late).detail["late-files"] == ["k"]
    assert expectation_event(late).detail_type == "sftp-ingest Expected File Late"


def test_a_scheduled_events_time_is_now_and_an_event_without_one_falls_back() -> None:
    fallback = datetime(2030, 1, 1, tzinfo=UTC)
    assert scheduled_time({"time": "2026-12-07T08:35:00Z"}, fallback) == datetime(
        2026, 12, 7, 8, 35, tzinfo=UTC
    )
    assert scheduled_time({}, fallback) == fallback
    assert scheduled_time({"time": "soon"}, fallback) == fallback
