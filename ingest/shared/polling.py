"""The one poll-until-deadline: ask again until the answer is there or the time is up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PollTimeoutError(TimeoutError):
    """What was waited for did not happen before the deadline."""


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
    deadline = clock() + timeout
    while True:
        found = probe()
        if found:
            return found
        left = deadline - clock()
        if left <= 0:
            raise PollTimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        sleep(min(interval, left))
