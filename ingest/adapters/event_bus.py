"""Puts :class:`~ingest.domain.notifications.BusEvent` values on an EventBridge bus.

``PutEvents`` takes at most 10 entries a call. An entry EventBridge refuses (throttled,
internal failure) fails the whole publish with a retryable :class:`EventsRefusedError`, so the
caller's batch is retried: events carry deterministic ids, and consumers drop the copies that
retry sends. It is the one PutEvents path (:class:`~ingest.adapters.publisher.Publisher`'s
Transfer-shaped events go through it too).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ingest.adapters.sdk import translated
from ingest.domain.notifications import SOURCE, BusEvent
from ingest.errors import EventsRefusedError

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

#: PutEvents' limit on entries per call
MAX_ENTRIES_PER_CALL = 10


class EventBus:
    """One EventBridge bus (the default bus unless told), for sftp-ingest's own events."""

    def __init__(
        self, client: EventBridgeClient, bus_name: str = "default", *, source: str = SOURCE
    ) -> None:
        self._client = client
        self.bus_name = bus_name
        self.source = source

    def publish(self, events: Iterable[BusEvent]) -> None:
        """Put every event on the bus, ten a call; raise if EventBridge refused any."""
        entries: list[PutEventsRequestEntryTypeDef] = [
            {
                "Source": self.source,
                "DetailType": e.detail_type,
                "Detail": json.dumps(e.detail, separators=(",", ":")),
                "Resources": list(e.resources),
                "EventBusName": self.bus_name,
            }
            for e in events
        ]
        for start in range(0, len(entries), MAX_ENTRIES_PER_CALL):
            batch = entries[start : start + MAX_ENTRIES_PER_CALL]
            with translated("events", "PutEvents", self.bus_name):
                resp = self._client.put_events(Entries=batch)
            if resp.get("FailedEntryCount"):
                refused = [
                    f"{r.get('ErrorCode')}: {r.get('ErrorMessage')}"
                    for r in resp.get("Entries", [])
                    if r.get("ErrorCode")
                ]
                raise EventsRefusedError(
                    "events",
                    "PutEvents",
                    f"{resp['FailedEntryCount']} of {len(batch)} entries "
                    f"refused on {self.bus_name}: {'; '.join(refused)}",
                )
