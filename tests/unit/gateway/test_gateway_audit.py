"""A flush returns only once everything logged before it is in CloudWatch, even when the
background shipper is in the middle of a shipment.

The shipment is held open by the fake CloudWatch port itself (an Event, not a sleep), so the
test always reaches the race it is about: the shipper has taken the entry, the queue is
empty, and a flush starts."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ingest.adapters.publisher import Publisher
from ingest.domain.events import TRANSFER_EVENT_SOURCE
from ingest.shared.aio import Bridge
from ingest_local.gateway.audit import Audit


class HeldLogs:
    """A CloudWatch Logs port whose PutLogEvents holds until the test releases it."""

    def __init__(self) -> None:
        self.shipping = threading.Event()  # a PutLogEvents call has started
        self.release = threading.Event()
        self.delivered: list[str] = []

    def create_log_group(self, **_: Any) -> None:
        return None

    def create_log_stream(self, **_: Any) -> None:
        return None

    def put_log_events(self, *, logEvents: list[dict[str, Any]], **_: Any) -> None:
        self.shipping.set()
        assert self.release.wait(30), "the test never released the shipment"
        self.delivered += [e["message"] for e in logEvents]


def test_flush_waits_for_a_shipment_already_under_way() -> None:
    logs = HeldLogs()

    async def scenario() -> None:
        bridge = Bridge()
        audit = Audit(
            Publisher(logs, None, source=TRANSFER_EVENT_SOURCE),  # type: ignore[arg-type]
            log_group="/aws/transfer/s-1",
            server_arn="arn:aws:transfer:us-east-1:123456789012:server/s-1",
            bridge=bridge,
        )
        await audit.start()
        audit.log("stream", **{"activity-type": "ERROR", "message": "session limit"})
        # the background shipper takes the entry and is held inside PutLogEvents
        assert await bridge.run(logs.shipping.wait, 30), "the shipper never shipped"
        flush = asyncio.create_task(audit.flush())  # finds nothing queued
        try:
            for _ in range(20):  # let the flush get as far as it can without the shipment
                await asyncio.sleep(0)
            assert not flush.done(), "flush returned while a shipment was still under way"
            assert logs.delivered == []
        finally:
            logs.release.set()
        await flush
        assert any("session limit" in m for m in logs.delivered)
        await audit.close()
        bridge.close()

    asyncio.run(scenario())
