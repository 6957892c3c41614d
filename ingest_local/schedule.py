"""EventBridge schedule expressions (``rate(...)`` and ``cron(...)``) for the local stack.

``cron`` has AWS's six fields (minutes hours day-of-month month day-of-week year, ``?`` for
"no specific value", day-of-week 1-7 = SUN-SAT); they are translated to the standard
five-field form and evaluated by ``cronsim``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from cronsim import CronSim, CronSimError

from ingest.errors import ConfigError

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleExpressionError(ConfigError):
    """A rule's ``ScheduleExpression`` is not a valid rate() or cron() expression."""


def _shift_days(text: str) -> str:
    return re.sub(r"\d+", lambda m: str(int(m.group(0)) - 1), text)


def _aws_dow_to_cron(field: str) -> str:
    # AWS numbers days 1-7 from Sunday, cron 0-6: shift the day numbers of ranges, lists and
    # "6L", but not the week number of "6#3" (the third Friday).
    if field == "?":
        return "*"
    items = []
    for item in field.split(","):
        day, sep, nth = item.partition("#")
        items.append(_shift_days(day) + sep + nth)
    return ",".join(items)


def aws_cron_to_standard(expression: str) -> str:
    """``"0 12 ? * 2 *"`` (AWS, six fields) → ``"0 12 * * 1"`` (five-field cron)."""
    fields = expression.split()
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"cron({expression}) must have 6 fields (minutes hours day-of-month month "
            "day-of-week year)",
            field="ScheduleExpression",
        )
    minutes, hours, dom, month, dow, year = fields
    if year not in ("*", "?"):
        raise ScheduleExpressionError(
            f"cron({expression}): the local stack supports only '*' in the year field",
            field="ScheduleExpression",
        )
    return " ".join([minutes, hours, "*" if dom == "?" else dom, month, _aws_dow_to_cron(dow)])


def next_fire_time(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` (timezone-aware, UTC) that the schedule fires.

    A ``rate`` schedule fires every period from ``after``; as in EventBridge the first event
    comes one period after the rule is created.
    """
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        if value < 1:
            raise ScheduleExpressionError(f"{expression}: the rate must be at least 1")
        return after + timedelta(seconds=value * _UNIT_SECONDS[unit])
    cron = _CRON.match(expression)
    if cron:
        standard = aws_cron_to_standard(cron.group(1))
        try:
            return next(CronSim(standard, after.replace(microsecond=0)))
        except CronSimError as exc:
            raise ScheduleExpressionError(
                f"{expression}: {exc}", field="ScheduleExpression"
            ) from exc
    raise ScheduleExpressionError(
        f"{expression!r} is neither rate(...) nor cron(...)", field="ScheduleExpression"
    )
