"""EventBridge cron in a time zone (ingest/domain/schedules.py): the syntax, DST, and the same
deadlines as cronsim (the local stack's evaluator) for every expression both understand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cronsim import CronSim, CronSimError
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.domain.schedules import (
    CronError,
    deadlines_between,
    next_deadline,
    parse_cron,
    previous_deadline,
    zone,
)

BERLIN = zone("Europe/Berlin")
UTC_ZONE = zone("UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def following(expression: str, start: str, n: int, tz: str = "UTC") -> list[str]:
    cron, where, moment = parse_cron(expression), zone(tz), at(start)
    out = []
    for _ in range(n):
        found = next_deadline(cron, moment, where)
        assert found is not None
        out.append(found.astimezone(where).isoformat())
        moment = found
    return out


def test_weekdays_at_nine_in_berlin_are_utc_eight_in_winter_and_seven_in_summer() -> None:
    assert following(
        "cron(0 9 ? * MON-FRI *)", "2026-03-26T12:00:00+00:00", 3, "Europe/Berlin"
    ) == [
        "2026-03-27T09:00:00+01:00",
        "2026-03-30T09:00:00+02:00",  # the weekend, and the clocks went forward on Sunday
        "2026-03-31T09:00:00+02:00",
    ]


def test_spring_forward_skips_the_wall_time_that_does_not_exist() -> None:
    # 2026-03-29 02:00 -> 03:00 in Berlin: 02:30 does not happen that day
    assert following("cron(30 2 * * ? *)", "2026-03-28T00:00:00+00:00", 2, "Europe/Berlin") == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_fall_back_fires_once_at_the_first_of_the_repeated_wall_times() -> None:
    # 2026-10-25 03:00 -> 02:00 in Berlin: 02:30 happens twice, the deadline is the first
    times = following("cron(30 2 * * ? *)", "2026-10-24T12:00:00+00:00", 2, "Europe/Berlin")
    assert times == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    every_15 = parse_cron("cron(0/15 2 25 10 ? 2026)")
    found = deadlines_between(
        every_15, at("2026-10-24T00:00:00Z"), at("2026-10-26T00:00:00Z"), BERLIN, limit=100
    )
    assert [d.isoformat() for d in found] == [
        "2026-10-25T00:00:00+00:00",
        "2026-10-25T00:15:00+00:00",
        "2026-10-25T00:30:00+00:00",
        "2026-10-25T00:45:00+00:00",
    ]


def test_previous_is_at_or_before_and_next_is_strictly_after() -> None:
    cron = parse_cron("cron(0 9 * * ? *)")
    nine = at("2026-06-01T09:00:00Z")
    assert previous_deadline(cron, nine, UTC_ZONE) == nine
    assert next_deadline(cron, nine, UTC_ZONE) == nine + timedelta(days=1)
    assert previous_deadline(cron, nine - timedelta(minutes=1), UTC_ZONE) == nine - timedelta(
        days=1
    )


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("cron(0 10 ? * 6L *)", "2026-01-01T00:00:00Z", "2026-01-30T10:00:00+00:00"),
        ("cron(0 10 ? * 3#2 *)", "2026-01-01T00:00:00Z", "2026-01-13T10:00:00+00:00"),
        ("cron(0 10 L * ? *)", "2026-02-01T00:00:00Z", "2026-02-28T10:00:00+00:00"),
        ("cron(0 10 LW * ? *)", "2026-05-01T00:00:00Z", "2026-05-29T10:00:00+00:00"),
        # the 1st of August 2026 is a Saturday: the nearest weekday within the month is Monday
        ("cron(0 10 1W * ? *)", "2026-07-15T00:00:00Z", "2026-08-03T10:00:00+00:00"),
        ("cron(0 10 15W * ? *)", "2026-08-01T00:00:00Z", "2026-08-14T10:00:00+00:00"),
        ("cron(0 10 ? JAN,JUL L 2027)", "2026-01-01T00:00:00Z", "2027-01-02T10:00:00+00:00"),
        ("cron(5/20 8-9 1 * ? *)", "2026-01-01T08:30:00Z", "2026-01-01T08:45:00+00:00"),
        ("cron(0 0 29 FEB ? *)", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00+00:00"),
    ],
)
def test_the_special_characters(expression: str, start: str, expected: str) -> None:
    assert following(expression, start, 1) == [expected]


def test_a_schedule_whose_years_are_over_has_no_next_deadline() -> None:
    cron = parse_cron("cron(0 9 * * ? 2020-2021)")
    assert next_deadline(cron, at("2026-01-01T00:00:00Z"), UTC_ZONE) is None
    assert previous_deadline(cron, at("2026-01-01T00:00:00Z"), UTC_ZONE) == at(
        "2021-12-31T09:00:00Z"
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 9 * * *)", "must have 6 fields"),
        ("cron(0 9 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 9 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(60 9 * * ? *)", "minutes: 60 is not within 0-59"),
        ("cron(0 24 * * ? *)", "hours: 24"),
        ("cron(0 9 ? * FRI-MON *)", "runs backwards"),
        ("cron(0 9 ? * 2#6 *)", "the week must be 1-5"),
        ("cron(0 9 ? * MOM *)", "day-of-week: 'MOM' is not a value"),
        ("cron(0/0 9 * * ? *)", "step"),
        ("cron(0 9 * * ? 1969)", "year: 1969"),
        ("cron(? 9 * * ? *)", "'?' is only for"),
    ],
)
def test_what_eventbridge_refuses_is_refused_with_the_field(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_cron(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")


# --- the same deadlines as cronsim (UTC; cronsim reads the standard five-field form) --------

_minute = st.sampled_from(["0", "*/15", "5/20", "0,30", "10-40/10", "59"])
_hour = st.sampled_from(["*", "9", "0-23/6", "8-17", "23", "1,13"])
_dom = st.sampled_from(["*", "1", "15", "L", "LW", "1-10", "30", "1/7"])
_month = st.sampled_from(["*", "JAN", "2", "3-5", "FEB,AUG", "*/3"])
_dow_aws = {"*": "*", "MON-FRI": "MON-FRI", "2": "1", "6L": "5L", "3#2": "2#2", "1,7": "0,6"}
_dow = st.sampled_from(sorted(_dow_aws))
_instant = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
)


_fields = st.tuples(_minute, _hour, _dom, _month, _dow, st.booleans())


@settings(max_examples=300, deadline=None)
@given(_fields, _instant)
def test_next_deadline_agrees_with_cronsim(
    fields: tuple[str, str, str, str, str, bool], start: datetime
) -> None:
    minute, hour, dom, month, dow, by_day = fields
    aws = f"{minute} {hour} {dom if by_day else '?'} {month} {'?' if by_day else dow} *"
    standard = (
        f"{minute} {hour} {dom if by_day else '*'} {month} {'*' if by_day else _dow_aws[dow]}"
    )
    ours = next_deadline(parse_cron(aws), start, UTC_ZONE)
    try:
        theirs = next(CronSim(standard, start.replace(tzinfo=None))).replace(tzinfo=UTC)
    except CronSimError:  # a day no month of the schedule has (30 FEB): it never fires
        assert ours is None
        return
    assert ours == theirs, (aws, standard)
    back = previous_deadline(parse_cron(aws), theirs - timedelta(minutes=1), UTC_ZONE)
    assert back is not None and back <= start  # nothing of the schedule between the two


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 23), st.integers(0, 59), st.sampled_from(["Europe/Berlin", "America/New_York"])
)
def test_a_daily_wall_time_fires_once_a_day_in_its_zone_except_where_the_clocks_skip_it(
    hour: int, minute: int, tz: str
) -> None:
    where = zone(tz)
    cron = parse_cron(f"cron({minute} {hour} * * ? *)")
    found = deadlines_between(
        cron, at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), where, limit=400
    )
    local = [d.astimezone(where) for d in found]
    assert all((d.hour, d.minute) == (hour, minute) for d in local)
    assert len({d.date() for d in local}) == len(local)  # never twice a day (autumn)
    skipped = 1 if hour == 2 else 0  # both zones skip 02:00-02:59 once in spring
    assert len(local) == 365 - skipped
    assert all(d.fold == 0 for d in local)
