"""One engine per connector: shared by concurrent first calls, replaced on a configuration
change without cutting the calls that still use the old one."""

from __future__ import annotations

import asyncio
from typing import Any

from connectors.engine_registry import EngineRegistry


class Engine:
    """Stands in for a TransferEngine: the registry only builds, counts and closes them."""

    def __init__(self, config: str) -> None:
        self.config = config
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def registry(configs: dict[str, str], built: list[Engine], ttl: float) -> EngineRegistry:
    async def describe(connector_id: str) -> Any:
        await asyncio.sleep(0.01)  # a slow DescribeConnector: calls overlap here
        return configs[connector_id]

    async def build(config: Any) -> Any:
        engine = Engine(config)
        built.append(engine)
        return engine

    return EngineRegistry(describe, build, ttl=ttl)


def test_concurrent_first_calls_share_one_engine() -> None:
    built: list[Engine] = []
    reg = registry({"c-1": "v1"}, built, ttl=30)

    async def scenario() -> list[Any]:
        borrowed = await asyncio.gather(*(reg.borrow("c-1") for _ in range(20)))
        return [engine for _, engine in borrowed]

    engines = asyncio.run(scenario())
    assert len(built) == 1
    assert all(e is built[0] for e in engines)


def test_config_change_retires_the_old_engine_once_its_calls_are_done() -> None:
    configs = {"c-1": "v1"}
    built: list[Engine] = []
    reg = registry(configs, built, ttl=0)  # describe on every call

    async def scenario() -> None:
        _, old = await reg.borrow("c-1")  # a long transfer under way
        configs["c-1"] = "v2"  # e.g. a rotated host key
        _, new = await reg.borrow("c-1")
        assert new is not old and new.config == "v2"
        assert not old.closed  # the running transfer keeps its connections
        await reg.give_back(new)
        assert not new.closed  # current engines stay open for the next calls
        await reg.give_back(old)
        assert old.closed  # closed as soon as its last call gave it back
        _, again = await reg.borrow("c-1")
        assert again is new  # unchanged config: the same engine
        await reg.give_back(again)
        await reg.close()
        assert new.closed

    asyncio.run(scenario())
    assert len(built) == 2


def test_an_idle_engine_closes_as_soon_as_it_is_replaced() -> None:
    configs = {"c-1": "v1"}
    built: list[Engine] = []
    reg = registry(configs, built, ttl=0)

    async def scenario() -> None:
        _, first = await reg.borrow("c-1")
        await reg.give_back(first)
        configs["c-1"] = "v2"
        _, second = await reg.borrow("c-1")
        assert first.closed and not second.closed
        await reg.give_back(second)

    asyncio.run(scenario())
