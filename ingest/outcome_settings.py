"""The outcomes function's settings, read once at cold start from its environment
(:mod:`ingest.settings`: each variable converted and checked, every problem at once)."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.settings import _FunctionSettings, variable


@dataclass(frozen=True)
class OutcomeSettings(_FunctionSettings):
    """The shared settings (the bucket receipts go to, the feeds, the ledger) and the bus."""

    #: the EventBridge bus of the events (the account's default bus unless told)
    event_bus: str = variable("EVENT_BUS_NAME", default="default")
