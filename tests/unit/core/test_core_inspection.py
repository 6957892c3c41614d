"""Selecting files for ``ingest status``: filters, newest first, ``--since``, ages."""

from __future__ import annotations

import datetime as dt

import pytest

from ingest.domain.files import FileEntry
from ingest.errors import ConfigError
from ingest.usecases.inspection import FileFilter, age, iso_time, newest_first, parse_since

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()


def entry(key: str, status: str = "PROCESSED", feed: str | None = "orders", **kw) -> FileEntry:
    return FileEntry(key=key, status=status, feed=feed, **kw)


FILES = [
    entry("inbound/acme/orders/a.csv", received_at=NOW - 7200),
    entry("inbound/acme/events/b.jsonl", "FAILED", "events", received_at=NOW - 60),
    entry("inbound/globex/orders/c.csv", "PROCESSED_WITH_REJECTS", received_at=NOW - 3 * 86400),
    entry("manual/unowned.csv", "UNMATCHED", None, updated_at=NOW - 10),
    entry("inbound/globex/orders/d.csv", "QUEUED", received_at=NOW - 60),
]


def keys(selected: FileFilter) -> list[str]:
    return [e.key for e in newest_first(FILES, selected)]


def test_the_partner_is_the_sftp_home_the_key_is_in():
    assert [e.partner for e in FILES] == ["acme", "acme", "globex", None, "globex"]
    assert entry("inbound/x.csv").partner is None  # no partner folder


def test_newest_first_then_by_key():
    assert keys(FileFilter()) == [
        "manual/unowned.csv",  # no received time: its last change counts
        "inbound/acme/events/b.jsonl",
        "inbound/globex/orders/d.csv",  # as new as b: by key
        "inbound/acme/orders/a.csv",
        "inbound/globex/orders/c.csv",
    ]


def test_every_filter_selects_and_they_combine():
    assert keys(FileFilter(partner="acme")) == [
        "inbound/acme/events/b.jsonl",
        "inbound/acme/orders/a.csv",
    ]
    assert keys(FileFilter(feed="events")) == ["inbound/acme/events/b.jsonl"]
    assert keys(FileFilter(statuses=frozenset({"FAILED", "UNMATCHED"}))) == [
        "manual/unowned.csv",
        "inbound/acme/events/b.jsonl",
    ]
    assert keys(FileFilter(since=NOW - 3600)) == [
        "manual/unowned.csv",
        "inbound/acme/events/b.jsonl",
        "inbound/globex/orders/d.csv",
    ]
    assert keys(FileFilter(partner="globex", feed="orders", since=NOW - 86400)) == [
        "inbound/globex/orders/d.csv"
    ]
    assert keys(FileFilter(prefix="inbound/globex/", statuses=frozenset({"QUEUED"}))) == [
        "inbound/globex/orders/d.csv"
    ]
    assert keys(FileFilter(partner="nobody")) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", NOW - 30),
        ("90m", NOW - 5400),
        ("2h", NOW - 7200),
        ("1.5h", NOW - 5400),
        ("7d", NOW - 7 * 86400),
        ("1w", NOW - 7 * 86400),
        ("2026-11-30", dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()),
        ("2026-11-30T08:00:00+01:00", dt.datetime(2026, 11, 30, 7, tzinfo=dt.UTC).timestamp()),
    ],
)
def test_since_takes_a_duration_or_a_date(text, expected):
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "5 parsecs", "-2h", ""])
def test_since_refuses_anything_else_with_what_it_takes(text):
    with pytest.raises(ConfigError, match="not a duration"):
        parse_since(text, now=NOW)


def test_ages_and_times_for_people():
    assert [age(NOW - s, now=NOW) for s in (5, 59, 60, 7199, 86400 * 3)] == [
        "5s",
        "59s",
        "1m",
        "1h",
        "3d",
    ]
    assert age(None, now=NOW) == ""
    assert iso_time(NOW + 0.6) == "2026-12-01T12:00:00Z"
    assert iso_time(None) is None


def test_each_chunk_says_where_it_is():
    from ingest.usecases.inspection import chunk_states

    processing = entry("inbound/acme/orders/a.csv", "PROCESSING", chunks=4)
    assert [c["state"] for c in chunk_states(processing, done={0, 2}, writing={1})] == [
        "done",
        "writing",
        "done",
        "waiting",
    ]
    failed = entry("inbound/acme/orders/a.csv", "FAILED", chunks=3)
    assert [c["state"] for c in chunk_states(failed, done={0}, writing=set())] == [
        "done",
        "failed",
        "failed",
    ]
    assert chunk_states(entry("x", "UNMATCHED"), done=set(), writing=set()) == []
