"""One transfer engine (and so one connection pool) per connector, kept while its
configuration is unchanged.

* The configuration is re-read at most every ``CONFIG_TTL`` seconds, so a burst of calls (a
  scheduled run) does not describe the connector and read its secret each time.
* A connector's first calls may arrive together: a lock per connector makes them share one
  engine. (Without it each built its own pool, and the partner's server saw
  MaxConcurrentConnections connections per call.)
* When the configuration changes, the old engine is retired: it closes once the last call
  using it gives it back, so transfers under way are not cut.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from connectors.config import ConnectorConfig
from connectors.transfer_engine import TransferEngine

#: seconds a connector's configuration is trusted before it is described again
CONFIG_TTL = 30.0


class EngineRegistry:
    """Engines by connector id; used from one event loop. ``describe`` and ``build`` are
    the owner's: both make blocking calls, which the owner runs through its bridge."""

    def __init__(
        self,
        describe: Callable[[str], Awaitable[ConnectorConfig]],
        build: Callable[[ConnectorConfig], Awaitable[TransferEngine]],
        *,
        ttl: float = CONFIG_TTL,
    ) -> None:
        self._describe = describe
        self._build = build
        self._ttl = ttl
        self._current: dict[str, tuple[ConnectorConfig, TransferEngine]] = {}
        self._checked: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[TransferEngine, int] = {}  # calls under way per engine
        self._retired: list[TransferEngine] = []  # replaced, closed when no longer used

    async def borrow(self, connector_id: str) -> tuple[ConnectorConfig, TransferEngine]:
        """The connector's config and engine, counted as in use until :meth:`give_back`."""
        config, engine = await self._get(connector_id)
        self._users[engine] = self._users.get(engine, 0) + 1  # no await since _get returned
        return config, engine

    async def config(self, connector_id: str) -> ConnectorConfig:
        """The connector's current configuration (ConnectorNotFoundError if there is none)."""
        config, _ = await self._get(connector_id)
        return config

    async def give_back(self, engine: TransferEngine) -> None:
        self._users[engine] -= 1
        if self._users[engine] == 0:
            del self._users[engine]
            if engine in self._retired:
                self._retired.remove(engine)
                await engine.close()

    async def close(self) -> None:
        """Close every engine, current and retired."""
        for engine in [e for _, e in self._current.values()] + self._retired:
            await engine.close()
        self._current.clear()
        self._retired.clear()

    def _fresh(self, connector_id: str) -> tuple[ConnectorConfig, TransferEngine] | None:
        cached = self._current.get(connector_id)
        if cached and time.monotonic() - self._checked.get(connector_id, 0) < self._ttl:
            return cached
        return None

    async def _get(self, connector_id: str) -> tuple[ConnectorConfig, TransferEngine]:
        if fresh := self._fresh(connector_id):
            return fresh
        async with self._locks.setdefault(connector_id, asyncio.Lock()):
            if fresh := self._fresh(connector_id):
                return fresh  # another call refreshed it while this one waited
            config = await self._describe(connector_id)
            self._checked[connector_id] = time.monotonic()
            cached = self._current.get(connector_id)
            if cached and cached[0] == config:
                return cached
            if cached:
                await self._retire(cached[1])
            engine = await self._build(config)
            self._current[connector_id] = (config, engine)
            return config, engine

    async def _retire(self, engine: TransferEngine) -> None:
        if self._users.get(engine):
            self._retired.append(engine)
        else:
            await engine.close()
