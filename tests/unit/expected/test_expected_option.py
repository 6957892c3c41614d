"""The feed option ``expected:`` (ingest/domain/feed_formats.py): what it reads into, its
defaults, and what it refuses, each problem naming the entry and its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.domain.feed_types import Expectation
from ingest.domain.feeds import load_feeds, parse_feeds
from ingest.errors import ConfigError

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "feeds-expected.yaml"
FEED = """feeds:
  - name: orders
    match: "inbound/{partner}/orders/*.csv"
    format: csv
    key: {pk: "O#{id}"}
    fields: {id: string}
    expected:
"""


def test_the_fixture_reads_into_expectations_and_survives_the_compiled_form() -> None:
    feeds = load_feeds(FIXTURE)
    assert feeds.get("orders").expected == (
        Expectation(
            schedule="cron(0 9 ? * MON-FRI *)",
            partners=("acme", "globex"),
            tz="Europe/Berlin",
            count=1,
            grace_seconds=1800,
        ),
    )
    assert feeds.get("stock").expected[0].partners is None  # "*"
    codec = pytest.importorskip("ingest.domain.feed_codec")  # the functions' compiled form
    assert codec.decode_feeds(codec.encode_feeds(feeds), source="x") == feeds


def test_defaults_are_utc_one_file_and_thirty_minutes() -> None:
    feeds = parse_feeds(FEED + '      - {partners: [acme], schedule: "cron(0 9 * * ? *)"}\n')
    assert feeds.feeds[0].expected == (Expectation("cron(0 9 * * ? *)", ("acme",), "UTC", 1, 1800),)
    assert parse_feeds(FEED.replace("    expected:\n", "")).feeds[0].expected == ()


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ('{partners: acme, schedule: "cron(0 9 * * ? *)"}', "partners", 'must be "*" or'),
        ('{partners: ["*"], schedule: "cron(0 9 * * ? *)"}', "partners", '"*" alone'),
        ('{partners: [a, a], schedule: "cron(0 9 * * ? *)"}', "partners", "twice"),
        ('{partners: [a], schedule: "cron(0 9 * * * *)"}', "schedule", "exactly one of"),
        ('{partners: [a], schedule: "rate(5 minutes)"}', "schedule", "not an EventBridge cron"),
        ('{partners: [a], schedule: "cron(0 9 30 FEB ? *)"}', "schedule", "never fires"),
        ('{partners: [a], schedule: "cron(0 25 * * ? *)"}', "schedule", "hours: 25"),
        ('{partners: [a], schedule: "cron(0 9 * * ? *)", tz: CET/Nowhere}', "tz", "unknown"),
        ('{partners: [a], schedule: "cron(0 9 * * ? *)", count: 0}', "count", "at least 1"),
        ('{partners: [a], schedule: "cron(0 9 * * ? *)", grace: soon}', "grace", "duration"),
    ],
)
def test_a_bad_entry_names_its_field(entry: str, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_feeds(FEED + f"      - {entry}\n")
    assert caught.value.field == f"expected[0].{field}"
    assert caught.value.feed == "orders"
    assert message in str(caught.value)


def test_an_unknown_option_lists_the_known_ones_and_every_problem_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_feeds(
            FEED
            + '      - {partners: [a], schedule: "cron(0 9 * * ? *)", when: now}\n'
            + '      - {partners: [a], schedule: "cron(0 9 * * ? *)", tz: Mars/X, count: -1}\n'
        )
    text = str(caught.value)
    assert "unknown expected option 'when' (known: partners, schedule, tz, count, grace)" in text
    assert "expected[1].tz" in text and "expected[1].count" in text
