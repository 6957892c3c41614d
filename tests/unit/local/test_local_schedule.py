"""EventBridge schedule expressions as the local stack evaluates them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest_local.schedule import ScheduleExpressionError, aws_cron_to_standard, next_fire_time

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("rate(1 minute)", T0 + timedelta(minutes=1)),
        ("rate(5 minutes)", T0 + timedelta(minutes=5)),
        ("rate(2 hours)", T0 + timedelta(hours=2)),
        ("rate(1 day)", T0 + timedelta(days=1)),
        ("cron(0/15 * * * ? *)", T0 + timedelta(minutes=15)),
        ("cron(0 12 ? * 2 *)", datetime(2026, 1, 5, 12, 0, tzinfo=UTC)),  # 2 = Monday in AWS
        ("cron(0 12 ? * MON *)", datetime(2026, 1, 5, 12, 0, tzinfo=UTC)),
        ("cron(30 8 1 * ? *)", datetime(2026, 2, 1, 8, 30, tzinfo=UTC)),
        ("cron(0 10 ? * 6#3 *)", datetime(2026, 1, 16, 10, 0, tzinfo=UTC)),  # third Friday
    ],
)
def test_next_fire_time(expression: str, expected: datetime) -> None:
    assert next_fire_time(expression, T0) == expected


def test_aws_day_of_week_numbers_shift_to_cron() -> None:
    assert aws_cron_to_standard("0 12 ? * 1-7 *") == "0 12 * * 0-6"
    assert aws_cron_to_standard("0 12 ? * 2,4,6 *") == "0 12 * * 1,3,5"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("every 5 minutes", "neither rate"),
        ("rate(0 minutes)", "at least 1"),
        ("cron(0 12 * * ?)", "6 fields"),
        ("cron(0 12 ? * 2 2027)", "year"),
        ("cron(99 12 ? * 2 *)", "cron"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ScheduleExpressionError, match=message):
        next_fire_time(expression, T0)
