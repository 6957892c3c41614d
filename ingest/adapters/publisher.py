"""The one CloudWatch Logs + EventBridge publisher, for records in Transfer Family's forms.

Both emitters of Transfer-shaped records send through :class:`Publisher`: the local SFTP
gateway (a Transfer server's structured logs and ``SFTP Server File …`` events) and the
connector engine (AWS's connector logs and ``SFTP Connector …`` events). What goes in a
record is theirs; the publisher owns how it gets there:

* log groups and streams are created on first use (an existing one is fine), once each; a
  group it creates gets ``retention_days`` (an existing group's retention is left as it is);
* ``PutLogEvents`` carries at most 10,000 entries a call; events go through
  :class:`~ingest.adapters.event_bus.EventBus` (ten a ``PutEvents``);
* SDK errors become :class:`~ingest.errors.StorageUnavailableError`; entries EventBridge
  refuses are logged (the caller's records are only a trace).

Its calls are blocking: asyncio callers run them through :class:`ingest.shared.aio.Bridge`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from ingest.adapters.event_bus import EventBus
from ingest.adapters.sdk import error_code, translated
from ingest.domain.notifications import BusEvent
from ingest.errors import EventsRefusedError

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_logs.client import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef

log = logging.getLogger(__name__)

#: The ``source`` of Transfer Family's own events (AWS reserves ``aws.*`` for its services).
#: PutLogEvents' limit on entries per call.
MAX_LOG_EVENTS_PER_CALL = 10_000
_EXISTS = "ResourceAlreadyExistsException"


def iso_now(at: float | None = None) -> str:
    """A UTC timestamp with microseconds, as Transfer's logs and events write them
    (``2024-05-01T12:00:00.123456Z``); ``at`` is a Unix time (default: now)."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Event(Struct, frozen=True):
    """One EventBridge event: its ``detail`` is sent as JSON, in the mapping's key order."""

    detail_type: str
    detail: Mapping[str, Any]
    resource: str


class Publisher:
    """Log entries to CloudWatch Logs and events to EventBridge (one source, one bus)."""

    def __init__(
        self,
        logs: CloudWatchLogsClient,
        events: EventBridgeClient,
        *,
        source: str,
        event_bus: str = "default",
        retention_days: int | None = None,
    ) -> None:
        self._logs = logs
        self._retention_days = retention_days
        self._bus = EventBus(events, event_bus, source=source)
        self.source = source
        self._groups: set[str] = set()
        self._streams: set[tuple[str, str]] = set()

    def ensure_group(self, group: str) -> None:
        """Create the log group unless this publisher already did (or it exists)."""
        if group in self._groups:
            return
        with translated("logs", "CreateLogGroup", group):
            try:
                self._logs.create_log_group(logGroupName=group)
            except Exception as exc:
                if error_code(exc) != _EXISTS:
                    raise
            else:
                if self._retention_days:
                    self._logs.put_retention_policy(
                        logGroupName=group, retentionInDays=self._retention_days
                    )
        self._groups.add(group)

    def put_logs(self, group: str, stream: str, entries: Sequence[InputLogEventTypeDef]) -> None:
        """Write ``entries`` (``timestamp`` in ms, ``message``) to ``group``/``stream``."""
        if not entries:
            return
        self._ensure_stream(group, stream)
        for start in range(0, len(entries), MAX_LOG_EVENTS_PER_CALL):
            with translated("logs", "PutLogEvents", f"{group} {stream}"):
                self._logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=list(entries[start : start + MAX_LOG_EVENTS_PER_CALL]),
                )

    def put_events(self, events: Sequence[Event]) -> None:
        """Send ``events`` on the bus, ten a call."""
        try:
            self._bus.publish(BusEvent(e.detail_type, e.detail, (e.resource,)) for e in events)
        except EventsRefusedError as exc:
            log.error("EventBridge refused events: %s", exc.detail)

    def _ensure_stream(self, group: str, stream: str) -> None:
        if (group, stream) in self._streams:
            return
        self.ensure_group(group)
        with translated("logs", "CreateLogStream", f"{group} {stream}"):
            try:
                self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except Exception as exc:
                if error_code(exc) != _EXISTS:
                    raise
        self._streams.add((group, stream))
