"""The expected-files check: deadlines passed without their files become MISSING, and files
that come after all make them LATE (the domain rules: :mod:`ingest.domain.expected`).

``check_expected(now, ports)`` is all of it; ``now`` is a parameter, so a test drives the
clock. The scheduled ExpectedFilesFunction calls it every few minutes; a run does nothing
(and reads nothing but the progress items) unless a deadline's grace has passed since the
last run or a MISSING deadline may still turn LATE.

Exactly once, without losing anything: each deadline's entries are written first,
conditionally (a rerun or a retry finds them there), then their events are published, then
each entry is marked ``notified``, and only then is the schedule's progress moved past the
deadline. A run that dies after publishing and before marking publishes those events again
on its retry, with the same ``event-id`` (consumers drop the copy); one that dies before
publishing publishes on its retry. No entry or event is made twice by a rerun.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from msgspec import Struct, field
from msgspec.structs import replace

from ingest.domain.expected import (
    Delivery,
    Schedule,
    deliveries,
    expectation_event,
    expectation_record,
    expected_key,
    in_window,
    iso_utc,
    parse_iso_utc,
    partners_for,
    schedules,
)
from ingest.domain.feed_types import FeedSet
from ingest.domain.files import FileEntry, FileStatus
from ingest.domain.notifications import BusEvent

logger = logging.getLogger(__name__)

#: at most this many past deadlines of one schedule in one run (a check that was off for
#: long catches up over several runs, oldest first, rather than in one long one)
MAX_DEADLINES_PER_RUN = 50


class Progress(Struct, frozen=True):
    """Where one schedule's check stands (its ledger item)."""

    #: the last deadline checked (None: never)
    checked: datetime | None = None
    #: until when a MISSING deadline of the schedule may still turn LATE (epoch seconds)
    watch_until: float = 0.0


class ExpectedLedger(Protocol):
    """What the check reads and writes of the ledger (``ingest.adapters.ledger_expected``)."""

    def progress(self, feed: str, ident: str) -> Progress: ...

    def save_progress(self, feed: str, ident: str, progress: Progress) -> None: ...

    def feed_entries(self, feeds: Collection[str]) -> list[FileEntry]: ...

    def record_missing(self, entry: FileEntry) -> bool: ...

    def mark_late(self, key: str, expectation: dict[str, Any]) -> bool: ...

    def mark_notified(self, key: str, status: str) -> None: ...


class EventPublisher(Protocol):
    """The bus (``ingest.adapters.event_bus.EventBus``)."""

    def publish(self, events: Iterable[BusEvent]) -> None: ...


class ExpectedPorts(Struct, frozen=True):
    feeds: Callable[[], FeedSet]
    ledger: ExpectedLedger
    bus: EventPublisher


class CheckReport(Struct):
    """What one run did: the deadlines it checked, the entries it made MISSING and LATE."""

    deadlines: int = 0
    missing: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    #: events published (a retry's repeats included)
    events: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "deadlines": self.deadlines,
            "missing": self.missing,
            "late": self.late,
            "events": self.events,
        }


def check_expected(now: datetime, ports: ExpectedPorts) -> CheckReport:
    """Check every feed's expected files as of ``now`` (timezone-aware).

    A schedule seen for the first time starts from ``now``: deadlines before it were never
    expected of anyone, so adding an ``expected:`` entry raises no alarm for the past.
    """
    report = CheckReport()
    found = schedules(ports.feeds().feeds)
    plans = []
    for schedule in found:
        ident = schedule.expectation.ident
        progress = ports.ledger.progress(schedule.feed, ident)
        if progress.checked is None:
            ports.ledger.save_progress(schedule.feed, ident, Progress(now, progress.watch_until))
            continue
        due = schedule.due(now, progress.checked, limit=MAX_DEADLINES_PER_RUN)
        if due or progress.watch_until > now.timestamp():
            plans.append((schedule, progress, due))
    if not plans:
        return report  # nothing passed and nothing may turn LATE: the ledger is not read
    run = _Run(ports, report, found, ports.ledger.feed_entries({s.feed for s in found}))
    run.publish([e for e in run.opened.values() if not _notified(e)])
    run.mark_late(list(run.opened.values()))  # each MISSING entry is looked at once a run
    for schedule, progress, due in plans:
        watch_until = progress.watch_until
        for deadline in due:
            made = run.check_deadline(schedule, deadline)
            if made:
                watch_until = max(watch_until, schedule.following_window(deadline)[1].timestamp())
            # what came after the deadline may make up for it already (and is then not
            # counted for the next deadline, checked next)
            run.mark_late(made)
            ports.ledger.save_progress(
                schedule.feed, schedule.expectation.ident, Progress(deadline, watch_until)
            )
            report.deadlines += 1
    return report


def _notified(entry: FileEntry) -> bool:
    return bool((entry.expectation or {}).get("notified") == entry.status)


class _Run:
    """One run's view of the ledger: the feeds' deliveries and their MISSING/LATE entries."""

    def __init__(
        self,
        ports: ExpectedPorts,
        report: CheckReport,
        found: Sequence[Schedule],
        entries: Sequence[FileEntry],
    ) -> None:
        self.ports = ports
        self.report = report
        self.schedules = {(s.feed, s.expectation.schedule, s.expectation.tz): s for s in found}
        self.files = deliveries(entries)
        #: each feed's and partner's files, oldest first (what a window is cut from)
        self.owned: dict[tuple[str, str], list[Delivery]] = {}
        for delivery in self.files:
            self.owned.setdefault((delivery.feed, delivery.partner), []).append(delivery)
        self.opened = {
            e.key: e for e in entries if e.status in (FileStatus.MISSING, FileStatus.LATE)
        }
        #: the files LATE entries took (they do not count for the deadline after theirs)
        self.taken = {
            key
            for e in self.opened.values()
            if e.status == FileStatus.LATE
            for key in (e.expectation or {}).get("late_files") or ()
        }

    def check_deadline(self, schedule: Schedule, deadline: datetime) -> list[FileEntry]:
        """The MISSING entries of one deadline, written and announced."""
        window = schedule.window(deadline)
        taken = frozenset(self.taken)
        expected = schedule.expectation.count
        missing: list[FileEntry] = []
        for partner in partners_for(schedule, self.files, window[1]):
            owned = self.owned.get((schedule.feed, partner), [])
            received = len(in_window(owned, schedule.feed, partner, window, taken=taken))
            if received >= expected:
                continue
            key = expected_key(schedule.feed, partner, deadline)
            entry = FileEntry(
                key=key,
                status=FileStatus.MISSING,
                feed=schedule.feed,
                received_at=window[1].timestamp(),
                updated_at=window[1].timestamp(),
                reason=f"{received} of {expected} expected file(s) by {iso_utc(deadline)} "
                f"(+{schedule.expectation.grace_seconds}s grace)",
                expectation=expectation_record(schedule, deadline, received=received),
            )
            if self.ports.ledger.record_missing(entry):
                self.report.missing.append(key)
                logger.info("expected files missing", extra={"key": key, "received": received})
            current = self.opened.setdefault(key, entry)
            if current.status == FileStatus.MISSING:
                missing.append(current)
        self.publish([e for e in missing if not _notified(e)])
        return missing

    def mark_late(self, entries: Iterable[FileEntry]) -> None:
        """Those of ``entries`` that are MISSING and whose files came in the following window
        turn LATE (oldest deadline first: it takes the files first)."""
        lated: list[FileEntry] = []
        for entry in sorted(entries, key=lambda e: e.key):
            record = entry.expectation or {}
            schedule = self.schedules.get(
                (entry.feed or "", record.get("schedule", ""), record.get("tz", ""))
            )
            if entry.status != FileStatus.MISSING or schedule is None or entry.partner is None:
                continue
            deadline = parse_iso_utc(record["deadline"])
            late = in_window(
                self.owned.get((schedule.feed, entry.partner), []),
                schedule.feed,
                entry.partner,
                schedule.following_window(deadline),
                taken=frozenset(self.taken),
            )
            received = int(record.get("received", 0))
            needed = int(record.get("expected", 1)) - received
            if len(late) < needed:
                continue
            keys = [d.key for d in late[:needed]]
            updated = {**record, "received": received + needed, "late_files": keys}
            if self.ports.ledger.mark_late(entry.key, updated):
                self.report.late.append(entry.key)
                logger.info("expected files late", extra={"key": entry.key, "late_files": keys})
            self.taken.update(keys)
            late_entry = replace(entry, status=FileStatus.LATE, expectation=updated)
            self.opened[entry.key] = late_entry
            lated.append(late_entry)
        self.publish(lated)

    def publish(self, entries: Sequence[FileEntry]) -> None:
        """Announce ``entries``, then mark each one notified (in the ledger and here)."""
        if not entries:
            return
        self.ports.bus.publish([expectation_event(e) for e in entries])
        self.report.events += len(entries)
        for entry in entries:
            self.ports.ledger.mark_notified(entry.key, entry.status)
            record = {**(entry.expectation or {}), "notified": entry.status}
            self.opened[entry.key] = replace(entry, expectation=record)
