"""The outcomes function's settings, read once at cold start from its environment.

A plain frozen dataclass (no schema library at cold start, as for every function); every
missing variable is reported at once, as a :class:`~ingest.errors.SettingsError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ingest.errors import SettingsError

_REQUIRED = {"bucket": "LANDING_BUCKET", "ledger_table": "LEDGER_TABLE", "feeds_uri": "FEEDS_URI"}


@dataclass(frozen=True)
class OutcomeSettings:
    """Where receipts go, where the feeds and the ledger are, which bus gets the events."""

    bucket: str
    ledger_table: str
    feeds_uri: str
    #: the EventBridge bus of the events (EVENT_BUS_NAME, default: the account's default bus)
    event_bus: str = "default"
    region: str | None = None
    #: set only by the local stack (moto); in AWS the SDK finds its endpoints itself
    endpoint_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OutcomeSettings:
        """Read and check the variables the template sets."""
        values = {name: value.strip() for name, value in env.items() if value.strip()}
        missing = [var for var in _REQUIRED.values() if var not in values]
        if missing:
            raise SettingsError.collect(
                [
                    SettingsError(f"environment variable {var} is required", field=var)
                    for var in missing
                ]
            )
        return cls(
            **{name: values[var] for name, var in _REQUIRED.items()},
            event_bus=values.get("EVENT_BUS_NAME", "default"),
            region=values.get("AWS_REGION") or values.get("AWS_DEFAULT_REGION"),
            endpoint_url=values.get("AWS_ENDPOINT_URL"),
        )
