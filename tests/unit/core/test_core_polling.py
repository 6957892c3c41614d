"""The one poll-until-deadline (``ingest.shared.polling``), blocking and asyncio, on a fake clock:
these tests never sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ingest.shared.polling import PollTimeoutError, poll_until, poll_until_async


class FakeTime:
    """A clock that moves only when slept on; records every pause asked for."""

    def __init__(self) -> None:
        self.now = 100.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def answers(*values: object) -> tuple[Callable[[], object], list[object]]:
    """A probe returning ``values`` in turn (the last one ever after), and the list of its calls."""
    calls: list[object] = []

    def probe() -> object:
        value = values[min(len(calls), len(values) - 1)]
        calls.append(value)
        return value

    return probe, calls


def test_poll_until_returns_the_first_truthy_value() -> None:
    fake = FakeTime()
    probe, calls = answers(None, 0, "", "found", "later")
    got = poll_until(probe, timeout=10, interval=0.5, sleep=fake.sleep, clock=fake.clock)
    assert got == "found"
    assert calls == [None, 0, "", "found"]
    assert fake.pauses == [0.5, 0.5, 0.5]


def test_poll_until_calls_the_probe_at_least_once() -> None:
    fake = FakeTime()
    probe, calls = answers("at once")
    assert poll_until(probe, timeout=0, sleep=fake.sleep, clock=fake.clock) == "at once"
    assert calls == ["at once"]
    assert fake.pauses == []


def test_poll_until_raises_naming_what_it_waited_for() -> None:
    fake = FakeTime()
    probe, calls = answers(None)
    with pytest.raises(PollTimeoutError, match=r"timed out after 1 s waiting for the widget"):
        poll_until(
            probe, timeout=1, interval=0.4, what="the widget", sleep=fake.sleep, clock=fake.clock
        )
    # never sleeps past the deadline, and probes once more on it
    assert fake.pauses == pytest.approx([0.4, 0.4, 0.2])
    assert len(calls) == 4
    assert fake.now == pytest.approx(101.0)


def test_poll_timeout_is_a_timeout_error() -> None:
    fake = FakeTime()
    with pytest.raises(TimeoutError):
        poll_until(lambda: None, timeout=0, sleep=fake.sleep, clock=fake.clock)


def test_poll_until_async_takes_a_plain_probe() -> None:
    fake = FakeTime()
    probe, calls = answers(None, None, 7)
    got = asyncio.run(
        poll_until_async(probe, timeout=10, interval=0.5, sleep=fake.async_sleep, clock=fake.clock)
    )
    assert got == 7
    assert calls == [None, None, 7]
    assert fake.pauses == [0.5, 0.5]


def test_poll_until_async_takes_an_async_probe() -> None:
    fake = FakeTime()
    probe, calls = answers(False, {"ready": True})

    async def async_probe() -> object:
        await asyncio.sleep(0)  # a real await: the probe runs on the loop
        return probe()

    got = asyncio.run(
        poll_until_async(
            async_probe, timeout=10, interval=1, sleep=fake.async_sleep, clock=fake.clock
        )
    )
    assert got == {"ready": True}
    assert calls == [False, {"ready": True}]
    assert fake.pauses == [1]


def test_poll_until_async_calls_the_probe_at_least_once() -> None:
    fake = FakeTime()
    probe, calls = answers("at once")
    got = asyncio.run(poll_until_async(probe, timeout=0, sleep=fake.async_sleep, clock=fake.clock))
    assert got == "at once"
    assert calls == ["at once"]


def test_poll_until_async_raises_the_same_error_naming_what() -> None:
    fake = FakeTime()
    probe, calls = answers(None)

    async def async_probe() -> None:
        probe()

    with pytest.raises(PollTimeoutError, match=r"timed out after 1 s waiting for the gadget"):
        asyncio.run(
            poll_until_async(
                async_probe,
                timeout=1,
                interval=0.4,
                what="the gadget",
                sleep=fake.async_sleep,
                clock=fake.clock,
            )
        )
    assert fake.pauses == pytest.approx([0.4, 0.4, 0.2])
    assert len(calls) == 4


def test_both_time_out_alike() -> None:
    """The twins share one deadline: the same probes, the same pauses, the same message."""
    blocking, async_ = FakeTime(), FakeTime()
    with pytest.raises(PollTimeoutError) as one:
        poll_until(
            lambda: None, timeout=2.5, interval=0.7, sleep=blocking.sleep, clock=blocking.clock
        )
    with pytest.raises(PollTimeoutError) as two:
        asyncio.run(
            poll_until_async(
                lambda: None,
                timeout=2.5,
                interval=0.7,
                sleep=async_.async_sleep,
                clock=async_.clock,
            )
        )
    assert str(one.value) == str(two.value)
    assert blocking.pauses == async_.pauses
