"""EventBridge cron expressions, evaluated in a time zone: a schedule's deadlines.

``cron(min hour day-of-month month day-of-week year)``, as EventBridge reads it:

* minutes ``0-59``, hours ``0-23``, day-of-month ``1-31``, month ``1-12`` or ``JAN-DEC``,
  day-of-week ``1-7`` or ``SUN-SAT`` (1 is Sunday), year ``1970-2199``;
* ``*`` (every value), ``,`` (a list), ``-`` (a range), ``/`` (a step: ``0/15``, ``*/15``,
  ``10-40/10``) in every field;
* ``?`` in day-of-month or day-of-week: exactly one of the two is ``?`` (EventBridge refuses
  both or neither);
* day-of-month ``L`` (the last day of the month), ``15W`` (the weekday nearest the 15th,
  within the month), ``LW`` (the last weekday of the month);
* day-of-week ``L`` (Saturday, the last day of the week), ``6L`` (the month's last Friday),
  ``2#1`` (the month's first Monday).

A schedule is evaluated in its IANA time zone (``zoneinfo``), as EventBridge Scheduler does,
including daylight saving changes: a wall time that does not exist (the hour skipped in
spring) has no deadline that day, and a wall time that happens twice (the hour repeated in
autumn) is a deadline once, at its first occurrence. Both are what EventBridge Scheduler
documents ("your schedule invocation gets skipped ... runs only once and doesn't repeat").
Times are whole minutes; an instant is a timezone-aware ``datetime``.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Struct

_CRON = re.compile(r"^\s*cron\((.*)\)\s*$", re.DOTALL)
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
#: EventBridge numbers days 1-7 from Sunday
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
MIN_YEAR, MAX_YEAR = 1970, 2199


class CronError(ValueError):
    """A cron expression EventBridge would refuse; the message says which field and why."""


class _Range(Struct, frozen=True):
    low: int
    high: int
    names: dict[str, int] | None = None


_BOUNDS = (
    _Range(0, 59),
    _Range(0, 23),
    _Range(1, 31),
    _Range(1, 12, _MONTHS),
    _Range(1, 7, _DAYS),
    _Range(MIN_YEAR, MAX_YEAR),
)


def _number(text: str, field: str, bounds: _Range) -> int:
    upper = text.upper()
    if bounds.names and upper in bounds.names:
        return bounds.names[upper]
    if not text.isdigit():
        raise CronError(f"{field}: {text!r} is not a value")
    value = int(text)
    if not bounds.low <= value <= bounds.high:
        raise CronError(f"{field}: {value} is not within {bounds.low}-{bounds.high}")
    return value


def _values(item: str, field: str, bounds: _Range) -> set[int]:
    """One list item of ``*``, ``a``, ``a-b``, each optionally ``/step``."""
    base, slash, step_text = item.partition("/")
    if slash and (not step_text.isdigit() or int(step_text) < 1):
        raise CronError(f"{field}: the step in {item!r} must be a whole number >= 1")
    step = int(step_text) if slash else 1
    if base == "*":
        low, high = bounds.low, bounds.high
    elif "-" in base:
        first, _, last = base.partition("-")
        low, high = _number(first, field, bounds), _number(last, field, bounds)
        if low > high:
            raise CronError(f"{field}: the range {base!r} runs backwards")
    else:
        low = _number(base, field, bounds)
        # "5/15": from 5 to the end of the field, every 15
        high = bounds.high if slash else low
    return set(range(low, high + 1, step))


def _plain_field(text: str, index: int) -> frozenset[int]:
    field, bounds = _FIELDS[index], _BOUNDS[index]
    if text == "?":
        raise CronError(f"{field}: '?' is only for day-of-month or day-of-week")
    values: set[int] = set()
    for item in text.split(","):
        values |= _values(item, field, bounds)
    return frozenset(values)


class _DayOfMonth(Struct, frozen=True):
    days: frozenset[int] = frozenset()
    last: bool = False
    last_weekday: bool = False
    #: ``15W``: the weekday nearest these days
    nearest_weekday: frozenset[int] = frozenset()

    def matches(self, day: date) -> bool:
        length = calendar.monthrange(day.year, day.month)[1]
        if day.day in self.days or (self.last and day.day == length):
            return True
        if self.last_weekday and day == _nearest_weekday(day.year, day.month, length):
            return True
        return any(day == _nearest_weekday(day.year, day.month, n) for n in self.nearest_weekday)


def _nearest_weekday(year: int, month: int, target: int) -> date | None:
    """The weekday nearest ``target`` within the month (Quartz's and EventBridge's ``W``)."""
    length = calendar.monthrange(year, month)[1]
    if target > length:
        return None
    day = date(year, month, target)
    weekday = day.weekday()  # Monday 0 ... Sunday 6
    if weekday == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return day - timedelta(days=1) if target > 1 else day + timedelta(days=2)
    if weekday == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return day + timedelta(days=1) if target < length else day - timedelta(days=2)
    return day


def _day_of_month(text: str) -> _DayOfMonth:
    field, bounds = _FIELDS[2], _BOUNDS[2]
    days: set[int] = set()
    nearest: set[int] = set()
    last = last_weekday = False
    for item in text.upper().split(","):
        if item == "L":
            last = True
        elif item == "LW":
            last_weekday = True
        elif item.endswith("W"):
            nearest.add(_number(item[:-1], field, bounds))
        else:
            days |= _values(item, field, bounds)
    return _DayOfMonth(frozenset(days), last, last_weekday, frozenset(nearest))


class _DayOfWeek(Struct, frozen=True):
    #: EventBridge's numbers: 1 is Sunday
    days: frozenset[int] = frozenset()
    #: ``6L``: the last Friday of the month
    last_of_month: frozenset[int] = frozenset()
    #: ``2#1``: (weekday, nth)
    nth: frozenset[tuple[int, int]] = frozenset()

    def matches(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7 + 1  # Monday 0 -> 2, Sunday 6 -> 1
        if weekday in self.days:
            return True
        length = calendar.monthrange(day.year, day.month)[1]
        if weekday in self.last_of_month and day.day + 7 > length:
            return True
        return (weekday, (day.day - 1) // 7 + 1) in self.nth


def _day_of_week(text: str) -> _DayOfWeek:
    field, bounds = _FIELDS[4], _BOUNDS[4]
    days: set[int] = set()
    last: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for item in text.upper().split(","):
        if item == "L":
            days.add(7)  # the last day of the week: Saturday
        elif item.endswith("L"):
            last.add(_number(item[:-1], field, bounds))
        elif "#" in item:
            day, _, which = item.partition("#")
            if not which.isdigit() or not 1 <= int(which) <= 5:
                raise CronError(f"{field}: in {item!r} the week must be 1-5")
            nth.add((_number(day, field, bounds), int(which)))
        else:
            days |= _values(item, field, bounds)
    return _DayOfWeek(frozenset(days), frozenset(last), frozenset(nth))


class Cron(Struct, frozen=True):
    """A parsed EventBridge cron expression (use :func:`parse_cron`)."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    day_of_month: _DayOfMonth | None
    day_of_week: _DayOfWeek | None

    def matches_day(self, day: date) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        if self.day_of_month is not None:
            return self.day_of_month.matches(day)
        assert self.day_of_week is not None  # parse_cron makes one of the two None
        return self.day_of_week.matches(day)


@functools.lru_cache(maxsize=256)
def parse_cron(expression: str) -> Cron:
    """``"cron(0 9 ? * MON-FRI *)"`` (the ``cron(...)`` wrapper optional) → :class:`Cron`;
    :class:`CronError` says what EventBridge would refuse."""
    match = _CRON.match(expression)
    body = match.group(1) if match else expression
    fields = body.split()
    if len(fields) != 6:
        raise CronError(
            f"cron({body.strip()}) must have 6 fields (minutes hours day-of-month month "
            f"day-of-week year), not {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise CronError(
            "exactly one of day-of-month and day-of-week must be '?' "
            "(e.g. 'cron(0 9 ? * MON-FRI *)' or 'cron(0 9 1 * ? *)')"
        )
    return Cron(
        expression=f"cron({' '.join(fields)})",
        minutes=tuple(sorted(_plain_field(minutes, 0))),
        hours=tuple(sorted(_plain_field(hours, 1))),
        months=_plain_field(month, 3),
        years=_plain_field(year, 5),
        day_of_month=None if dom == "?" else _day_of_month(dom),
        day_of_week=None if dow == "?" else _day_of_week(dow),
    )


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (``Europe/Berlin``, ``UTC``); ValueError if unknown.

    ``UTC`` needs no time zone database (the default zone works wherever the tz data is
    missing); every other name is read from the system's database or the ``tzdata`` package.
    """
    if name in ("UTC", "Etc/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')"
        ) from exc


def _instant(day: date, hour: int, minute: int, tz: tzinfo) -> datetime | None:
    """The instant of a wall time in ``tz``: None when it does not exist (a spring-forward
    gap), its first occurrence when it happens twice (autumn)."""
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)  # fold=0: the first
    utc = wall.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != wall.replace(tzinfo=None):
        return None  # skipped by the clock change
    return utc


def _month_start(year: int, month: int, *, last: bool) -> date:
    return date(year, month, calendar.monthrange(year, month)[1] if last else 1)


def _days(cron: Cron, start: date, forward: bool) -> Iterator[date]:
    """The days the schedule may fire on, from ``start`` on (or back), skipping whole months
    and years it excludes; ends past its last (or before its first) year."""
    first, last = min(cron.years), max(cron.years)
    year, month = start.year, start.month
    day: date | None = start
    while first <= year <= last:
        if year in cron.years and month in cron.months:
            if day is None:
                day = _month_start(year, month, last=not forward)
            step = timedelta(days=1 if forward else -1)
            while day.month == month:
                if cron.matches_day(day):
                    yield day
                day += step
        day = None
        month += 1 if forward else -1
        if month == 13:
            year, month = year + 1, 1
        elif month == 0:
            year, month = year - 1, 12
    return


def _fire_times(cron: Cron, day: date, tz: tzinfo, *, reverse: bool) -> Iterator[datetime]:
    times = [(h, m) for h in cron.hours for m in cron.minutes]
    for hour, minute in reversed(times) if reverse else times:
        instant = _instant(day, hour, minute, tz)
        if instant is not None:
            yield instant


def _search(cron: Cron, moment: datetime, tz: tzinfo, *, forward: bool) -> datetime | None:
    if moment.tzinfo is None:
        raise ValueError("a deadline search needs a timezone-aware instant")
    # a day before (or after) the local date: the instant may be on either side of midnight
    start = moment.astimezone(tz).date() - timedelta(days=1 if forward else -1)
    start = min(max(start, date(min(cron.years), 1, 1)), date(max(cron.years), 12, 31))
    for day in _days(cron, start, forward):
        for instant in _fire_times(cron, day, tz, reverse=not forward):
            if (instant > moment) if forward else (instant <= moment):
                return instant
    return None


def next_deadline(cron: Cron, after: datetime, tz: tzinfo) -> datetime | None:
    """The schedule's first instant strictly after ``after`` (UTC), or None if it has none."""
    return _search(cron, after, tz, forward=True)


def previous_deadline(cron: Cron, at: datetime, tz: tzinfo) -> datetime | None:
    """The schedule's last instant at or before ``at`` (UTC), or None if it has none."""
    return _search(cron, at, tz, forward=False)


def deadlines_between(
    cron: Cron, after: datetime, until: datetime, tz: tzinfo, *, limit: int
) -> list[datetime]:
    """The instants in ``(after, until]``, oldest first, at most ``limit`` (the newest)."""
    found: list[datetime] = []
    moment = previous_deadline(cron, until, tz)
    while moment is not None and moment > after and len(found) < limit:
        found.append(moment)
        moment = previous_deadline(cron, moment - timedelta(minutes=1), tz)
    return found[::-1]
