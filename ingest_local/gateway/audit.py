"""Transfer Family's structured logs and EventBridge events, emitted by the local gateway.

Log entries are JSON objects with Transfer's field names (``activity-type``, ``session-id``,
``user``, ``path``, ``bytes-in``, ``source-ip``, ``ssh-public-key-fingerprint``,
``resource-arn`` …), written to the CloudWatch Logs group ``/aws/transfer/<server-id>``
in one stream per session (``<user>.<session-id>``), the way Transfer names them.

Upload and rename outcomes are also sent as EventBridge events of Transfer's shape
(``source: aws.transfer``, ``detail-type: SFTP Server File Upload Completed|Failed`` and
``SFTP Server File Rename Completed|Failed``).

Both go through a background task so that a slow CloudWatch never stalls a client's data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_logs.client import CloudWatchLogsClient

log = logging.getLogger("ingest.gateway")

UPLOAD_COMPLETED = "SFTP Server File Upload Completed"
UPLOAD_FAILED = "SFTP Server File Upload Failed"
RENAME_COMPLETED = "SFTP Server File Rename Completed"
RENAME_FAILED = "SFTP Server File Rename Failed"
EVENT_SOURCE = "aws.transfer"
FLUSH_SECONDS = 0.25


def iso_now(clock: Callable[[], float] = time.time) -> str:
    """A timestamp in the form Transfer's events use (``2024-05-01T12:00:00.123456Z``)."""
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Pending:
    logs: dict[str, list[Any]] = field(default_factory=dict)  # InputLogEventTypeDef
    events: list[dict[str, Any]] = field(default_factory=list)


class Audit:
    """Buffers log entries and events and ships them in the background."""

    def __init__(
        self,
        logs: CloudWatchLogsClient,
        events: EventBridgeClient,
        *,
        log_group: str,
        server_arn: str,
        executor: Executor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._logs = logs
        self._events = events
        self.log_group = log_group
        self.server_arn = server_arn
        self._executor = executor
        self._clock = clock
        self._pending = _Pending()
        self._streams: set[str] = set()
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Create the log group if needed and start the shipping task."""
        await self._run(self._ensure_group)
        self._task = asyncio.get_running_loop().create_task(self._ship_forever())

    def log(self, stream: str, **entry: Any) -> None:
        """Queue one structured log entry (fields with a None value are left out)."""
        entry = {"resource-arn": self.server_arn, **entry}
        record = {k: v for k, v in entry.items() if v is not None}
        log.info("%s", json.dumps(record, sort_keys=True))
        self._pending.logs.setdefault(stream, []).append(
            {"timestamp": int(self._clock() * 1000), "message": json.dumps(record)}
        )
        self._wake.set()

    def upload_event(self, *, completed: bool, detail: dict[str, Any]) -> None:
        """Queue a Transfer ``SFTP Server File Upload Completed|Failed`` event."""
        self.event(UPLOAD_COMPLETED if completed else UPLOAD_FAILED, detail)

    def rename_event(self, *, completed: bool, detail: dict[str, Any]) -> None:
        """Queue a Transfer ``SFTP Server File Rename Completed|Failed`` event."""
        self.event(RENAME_COMPLETED if completed else RENAME_FAILED, detail)

    def event(self, detail_type: str, detail: dict[str, Any]) -> None:
        """Queue one ``aws.transfer`` event for this server (None values are left out)."""
        self._pending.events.append(
            {
                "Source": EVENT_SOURCE,
                "DetailType": detail_type,
                "Resources": [self.server_arn],
                "Detail": json.dumps({k: v for k, v in detail.items() if v is not None}),
            }
        )
        self._wake.set()

    async def flush(self) -> None:
        """Ship everything queued so far, and return once it is shipped (tests and shutdown
        call this). Flushes take turns: one that finds the queue empty still waits for a
        shipment already under way, so "flushed" always means "in CloudWatch"."""
        async with self._flushing:
            pending, self._pending = self._pending, _Pending()
            if pending.logs or pending.events:
                await self._run(lambda: self._ship(pending))

    async def close(self) -> None:
        """Flush and stop the shipping task."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def _ship_forever(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(FLUSH_SECONDS)  # batch what arrives meanwhile
            try:
                await self.flush()
            except Exception:  # never let audit shipping take the gateway down
                log.exception("shipping audit records failed")

    def _ship(self, pending: _Pending) -> None:
        for stream, entries in pending.logs.items():
            self._ensure_stream(stream)
            # put_log_events takes at most 10,000 events per call
            for start in range(0, len(entries), 10_000):
                self._logs.put_log_events(
                    logGroupName=self.log_group,
                    logStreamName=stream,
                    logEvents=entries[start : start + 10_000],
                )
        for start in range(0, len(pending.events), 10):
            resp = self._events.put_events(Entries=pending.events[start : start + 10])  # type: ignore[arg-type]
            if resp.get("FailedEntryCount"):
                log.error("EventBridge refused events: %s", resp.get("Entries"))

    def _ensure_group(self) -> None:
        try:
            self._logs.create_log_group(logGroupName=self.log_group)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise

    def _ensure_stream(self, stream: str) -> None:
        if stream in self._streams:
            return
        try:
            self._logs.create_log_stream(logGroupName=self.log_group, logStreamName=stream)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        self._streams.add(stream)

    async def _run(self, fn: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, fn)
