"""A flush returns only once everything logged before it is in CloudWatch, even when the
background shipper is in the middle of a slow shipment."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ingest_local.gateway.audit import Audit


class SlowLogs:
    """A CloudWatch Logs client whose PutLogEvents takes a while (as under load)."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self._lock = threading.Lock()

    def create_log_group(self, **_: Any) -> None:
        return None

    def create_log_stream(self, **_: Any) -> None:
        return None

    def put_log_events(self, *, logEvents: list[dict[str, Any]], **_: Any) -> None:
        time.sleep(0.3)
        with self._lock:
            self.delivered += [e["message"] for e in logEvents]


def test_flush_waits_for_a_shipment_already_under_way() -> None:
    logs = SlowLogs()

    async def scenario() -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            audit = Audit(
                logs,  # type: ignore[arg-type]
                None,  # type: ignore[arg-type]
                log_group="/aws/transfer/s-1",
                server_arn="arn:aws:transfer:us-east-1:123456789012:server/s-1",
                executor=pool,
            )
            await audit.start()
            audit.log("stream", **{"activity-type": "ERROR", "message": "session limit"})
            await asyncio.sleep(0.35)  # the background shipper has taken the entry by now
            await audit.flush()  # finds nothing queued, but must wait for that shipment
            assert any("session limit" in m for m in logs.delivered)
            await audit.close()

    asyncio.run(scenario())
