"""Transfer Family's structured logs and EventBridge events, emitted by the local gateway.

Log entries are JSON objects with Transfer's field names (``activity-type``, ``session-id``,
``user``, ``path``, ``bytes-in``, ``source-ip``, ``ssh-public-key-fingerprint``,
``resource-arn`` …), written to the CloudWatch Logs group ``/aws/transfer/<server-id>``
in one stream per session (``<user>.<session-id>``), the way Transfer names them.

Upload and rename outcomes are also sent as EventBridge events of Transfer's shape
(``source: aws.transfer``, ``detail-type: SFTP Server File Upload Completed|Failed`` and
``SFTP Server File Rename Completed|Failed``).

Both go through a background task so that a slow CloudWatch never stalls a client's data,
and on through the one publisher, :class:`ingest.adapters.publisher.Publisher`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ingest.adapters.publisher import Event, Publisher
from ingest.domain.events import (
    TRANSFER_RENAME_COMPLETED,
    TRANSFER_RENAME_FAILED,
    TRANSFER_UPLOAD_COMPLETED,
    TRANSFER_UPLOAD_FAILED,
)
from ingest.shared.aio import Bridge

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef

log = logging.getLogger("ingest.gateway")

FLUSH_SECONDS = 0.25


@dataclass
class _Pending:
    logs: dict[str, list[InputLogEventTypeDef]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


class Audit:
    """Buffers log entries and events and ships them in the background."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        log_group: str,
        server_arn: str,
        bridge: Bridge,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._publisher = publisher
        self.log_group = log_group
        self.server_arn = server_arn
        self._bridge = bridge
        self._clock = clock
        self._pending = _Pending()
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Create the log group if needed and start the shipping task."""
        await self._bridge.run(self._publisher.ensure_group, self.log_group)
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
        self.event(TRANSFER_UPLOAD_COMPLETED if completed else TRANSFER_UPLOAD_FAILED, detail)

    def rename_event(self, *, completed: bool, detail: dict[str, Any]) -> None:
        """Queue a Transfer ``SFTP Server File Rename Completed|Failed`` event."""
        self.event(TRANSFER_RENAME_COMPLETED if completed else TRANSFER_RENAME_FAILED, detail)

    def event(self, detail_type: str, detail: dict[str, Any]) -> None:
        """Queue one ``aws.transfer`` event for this server (None values are left out)."""
        kept = {k: v for k, v in detail.items() if v is not None}
        self._pending.events.append(Event(detail_type, kept, self.server_arn))
        self._wake.set()

    async def flush(self) -> None:
        """Ship everything queued so far, and return once it is shipped (tests and shutdown
        call this). Flushes take turns: one that finds the queue empty still waits for a
        shipment already under way, so "flushed" always means "in CloudWatch"."""
        async with self._flushing:
            pending, self._pending = self._pending, _Pending()
            if pending.logs or pending.events:
                await self._bridge.run(self._ship, pending)

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
            self._publisher.put_logs(self.log_group, stream, entries)
        self._publisher.put_events(pending.events)
