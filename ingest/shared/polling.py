"""The one poll-until-deadline: ask again until the answer is there or the time is up.

:func:`poll_until` blocks; :func:`poll_until_async` is its asyncio twin. Both keep time with
one :class:`_Deadline`, so they time out alike.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


class PollTimeoutError(TimeoutError):
    """What was waited for did not happen before the deadline."""


class _Deadline:
    """The pauses between probes, up to a deadline set when it is made."""

    def __init__(
        self, timeout: float, interval: float, what: str, clock: Callable[[], float]
    ) -> None:
        self._timeout = timeout
        self._interval = interval
        self._what = what
        self._clock = clock
        self._end = clock() + timeout

    def pause(self) -> float:
        """How long to wait before the next probe (never past the deadline, so the last
        probe falls on it); raises :class:`PollTimeoutError` once the deadline has passed."""
        left = self._end - self._clock()
        if left <= 0:
            raise PollTimeoutError(f"timed out after {self._timeout:g} s waiting for {self._what}")
        return min(self._interval, left)


def poll_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "the condition",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    Raises :class:`PollTimeoutError` (naming ``what``) once ``timeout`` seconds have passed;
    ``probe`` is always called at least once, and once more at the deadline.
    """
    deadline = _Deadline(timeout, interval, what, clock)
    while True:
        found = probe()
        if found:
            return found
        sleep(deadline.pause())


@overload
async def poll_until_async(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float,
    interval: float = ...,
    what: str = ...,
    sleep: Callable[[float], Awaitable[object]] = ...,
    clock: Callable[[], float] = ...,
) -> T: ...


@overload
async def poll_until_async(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = ...,
    what: str = ...,
    sleep: Callable[[float], Awaitable[object]] = ...,
    clock: Callable[[], float] = ...,
) -> T: ...


async def poll_until_async(
    probe: Callable[[], Awaitable[T | None]] | Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "the condition",
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """:func:`poll_until` for asyncio code: ``probe`` may be a plain or an async callable, and
    the waits between probes are ``await``-ed, so the event loop keeps running meanwhile.

    Raises :class:`PollTimeoutError` (naming ``what``) once ``timeout`` seconds have passed;
    ``probe`` is always called at least once, and once more at the deadline.
    """
    deadline = _Deadline(timeout, interval, what, clock)
    while True:
        found = probe()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        await sleep(deadline.pause())
