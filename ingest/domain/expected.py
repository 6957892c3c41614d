"""Expected files: a feed's deadlines, the deliveries each one counts, and what is missing.

A feed's ``expected:`` entry (:class:`~ingest.domain.feed_types.Expectation`) has deadlines
(its cron schedule in its time zone, :mod:`ingest.domain.schedules`). Deadline ``D`` counts
the files each partner delivered in its *window*: from the previous deadline plus grace to
``D`` plus grace. Windows tile time, so each file counts for exactly one deadline: a file in
a deadline's grace period is on time for it, and not counted again for the next one.

* At ``D + grace``, a partner with fewer than ``count`` files in the window is ``MISSING``: a
  ledger entry ``expected/<feed>/<partner>/<D>`` (``D`` in ISO 8601 UTC).
* Files of that partner and feed arriving in the following window make it ``LATE`` once they
  make up the shortfall; those files are the missing ones, taken from the next deadline's
  window (its count leaves them out), so a partner that sends one file a day, a day late, is
  missing every day and late every day, rather than on time from the second day.

Which files count: every ledger entry of the feed under ``inbound/<partner>/`` whatever became
of it (a FAILED file was delivered), except what is not a delivery of that feed's data: an
upload cut off (PARTIAL), a temporary name or a sidecar (IGNORED), content delivered before
(DUPLICATE), and envelopes (EXPANDED, DECRYPTED), whose members and plaintexts are the files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from msgspec import Struct

from ingest.domain.feed_types import Expectation
from ingest.domain.files import EXPECTED_PREFIX, FileEntry, FileStatus
from ingest.domain.notifications import (
    EXPECTED_LATE,
    EXPECTED_MISSING,
    BusEvent,
    detail_type,
)
from ingest.domain.schedules import (
    Cron,
    deadlines_between,
    next_deadline,
    parse_cron,
    previous_deadline,
    zone,
)

#: entries of a feed that are not deliveries of its files (see the module's docstring)
NOT_DELIVERIES = frozenset(
    {
        FileStatus.PARTIAL,
        FileStatus.IGNORED,
        FileStatus.DUPLICATE,
        FileStatus.EXPANDED,
        FileStatus.DECRYPTED,
        FileStatus.UNMATCHED,
        FileStatus.MISSING,
        FileStatus.LATE,
    }
)


def iso_utc(moment: datetime) -> str:
    """``2026-12-01T08:00:00Z``: a deadline as its key and its event write it."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def parse_iso_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def expected_key(feed: str, partner: str, deadline: datetime) -> str:
    """The ledger key of one partner's deadline: ``expected/<feed>/<partner>/<deadline>``."""
    return f"{EXPECTED_PREFIX}{feed}/{partner}/{iso_utc(deadline)}"


def event_id(key: str, status: str) -> str:
    """The same id for every copy of one deadline's MISSING (or LATE) event."""
    return hashlib.sha256(f"{key}\0{status}".encode()).hexdigest()[:32]


class Schedule(Struct, frozen=True):
    """One ``expected:`` entry of one feed, with its parsed cron and zone."""

    feed: str
    expectation: Expectation

    @property
    def cron(self) -> Cron:
        return parse_cron(self.expectation.schedule)

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.expectation.grace_seconds)

    def due(self, now: datetime, checked: datetime | None, *, limit: int) -> list[datetime]:
        """The deadlines whose grace has passed by ``now`` and that are after ``checked`` (the
        last one checked), oldest first; the newest only, when none was checked yet."""
        tz = zone(self.expectation.tz)
        if checked is None:
            latest = previous_deadline(self.cron, now - self.grace, tz)
            return [] if latest is None else [latest]
        return deadlines_between(self.cron, checked, now - self.grace, tz, limit=limit)

    def window(self, deadline: datetime) -> tuple[datetime, datetime]:
        """Where deadline ``deadline``'s files are counted: ``[previous + grace, deadline +
        grace)`` (a deadline with no previous one counts from a day before)."""
        tz = zone(self.expectation.tz)
        before = previous_deadline(self.cron, deadline - timedelta(minutes=1), tz)
        start = before if before is not None else deadline - timedelta(days=1)
        return start + self.grace, deadline + self.grace

    def following_window(self, deadline: datetime) -> tuple[datetime, datetime]:
        """The window after ``deadline``'s: where its late files come."""
        following = next_deadline(self.cron, deadline, zone(self.expectation.tz))
        end = following if following is not None else deadline + timedelta(days=1)
        return deadline + self.grace, end + self.grace

    def upcoming(self, now: datetime, n: int) -> list[datetime]:
        """The next ``n`` deadlines after ``now``."""
        tz = zone(self.expectation.tz)
        found: list[datetime] = []
        moment: datetime | None = now
        while moment is not None and len(found) < n:
            moment = next_deadline(self.cron, moment, tz)
            if moment is not None:
                found.append(moment)
        return found


def schedules(feeds: Iterable[Any]) -> list[Schedule]:
    """Every ``expected:`` entry of ``feeds`` (a FeedSet's feeds)."""
    return [Schedule(f.name, e) for f in feeds for e in f.expected]


class Delivery(Struct, frozen=True):
    """A file of a feed, as the check counts it."""

    key: str
    feed: str
    partner: str
    received_at: float


def deliveries(entries: Iterable[FileEntry]) -> list[Delivery]:
    """The entries that are deliveries of their feed's files, oldest first."""
    found = [
        Delivery(e.key, e.feed, partner, e.received_at)
        for e in entries
        if e.feed is not None
        and e.received_at is not None
        and e.status not in NOT_DELIVERIES
        and e.key.startswith("inbound/")
        and (partner := e.partner) is not None
    ]
    return sorted(found, key=lambda d: (d.received_at, d.key))


def partners_for(
    schedule: Schedule, files: Sequence[Delivery], before: datetime
) -> tuple[str, ...]:
    """The partners a deadline expects: its list, or (``"*"``) every partner that delivered a
    file of the feed before ``before`` (the end of the deadline's window)."""
    named = schedule.expectation.partners
    if named is not None:
        return named
    limit = before.timestamp()
    return tuple(
        sorted({d.partner for d in files if d.feed == schedule.feed and d.received_at < limit})
    )


def in_window(
    files: Sequence[Delivery],
    feed: str,
    partner: str,
    window: tuple[datetime, datetime],
    *,
    taken: frozenset[str] = frozenset(),
) -> list[Delivery]:
    """The partner's files of the feed received in ``window``, oldest first, less ``taken``
    (the files an earlier deadline's LATE entry took)."""
    start, end = window[0].timestamp(), window[1].timestamp()
    return [
        d
        for d in files
        if d.feed == feed
        and d.partner == partner
        and start <= d.received_at < end
        and d.key not in taken
    ]


def expectation_record(
    schedule: Schedule, deadline: datetime, *, received: int, late_files: Sequence[str] = ()
) -> dict[str, Any]:
    """A MISSING or LATE entry's ``expectation`` (``ingest status``, docs/contracts.md)."""
    start, end = schedule.window(deadline)
    e = schedule.expectation
    return {
        "deadline": iso_utc(deadline),
        "schedule": e.schedule,
        "tz": e.tz,
        "grace": e.grace_seconds,
        "expected": e.count,
        "received": received,
        "window_start": iso_utc(start),
        "window_end": iso_utc(end),
        "late_files": list(late_files),
    }


def expectation_event(entry: FileEntry) -> BusEvent:
    """The event of a MISSING or LATE entry: ``sftp-ingest Expected File Missing|Late``."""
    record = entry.expectation or {}
    status = entry.status
    detail: dict[str, Any] = {
        "event-id": event_id(entry.key, status),
        "key": entry.key,
        "feed": entry.feed,
        "partner": entry.partner,
        "deadline": record.get("deadline"),
        "expected": record.get("expected"),
        "received": record.get("received"),
        "status": status,
        "schedule": record.get("schedule"),
        "time-zone": record.get("tz"),
        "grace-seconds": record.get("grace"),
        "window-start": record.get("window_start"),
        "window-end": record.get("window_end"),
    }
    if status == FileStatus.LATE:
        detail["late-files"] = list(record.get("late_files") or [])
    what = EXPECTED_LATE if status == FileStatus.LATE else EXPECTED_MISSING
    return BusEvent(detail_type=detail_type(what), detail=detail)


def scheduled_time(event: dict[str, Any], fallback: datetime) -> datetime:
    """The time of a scheduled EventBridge event (``"time": "2026-12-01T09:35:00Z"``), or
    ``fallback`` for an event without one (an invocation by hand)."""
    text = event.get("time") if isinstance(event, dict) else None
    if not isinstance(text, str):
        return fallback
    try:
        return parse_iso_utc(text)
    except ValueError:
        return fallback
