"""Login policy bookkeeping: lockout of source addresses and session limits.

The SSH connection (``connection.py``) asks these; they hold no SSH state themselves.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

# the partner registry validates names and reads the API's "no such user" as these do
from ingest.local.gateway.users import USER_NAME, USER_NOT_FOUND

__all__ = ["USER_NAME", "USER_NOT_FOUND", "AuthGuard", "SessionLimiter"]


class AuthGuard:
    """Locks out a source address after repeated authentication failures."""

    def __init__(
        self,
        *,
        max_failures: int,
        window: float,
        lockout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._window = window
        self._lockout = lockout
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}

    def is_locked(self, ip: str) -> bool:
        """True while ``ip`` is locked out."""
        until = self._locked_until.get(ip)
        if until is None:
            return False
        if self._clock() >= until:
            del self._locked_until[ip]
            return False
        return True

    def record_failure(self, ip: str) -> bool:
        """Count one failure; True if it locks the address out."""
        now = self._clock()
        recent = self._failures[ip]
        recent.append(now)
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        if len(recent) >= self._max:
            del self._failures[ip]  # forget the count: the lockout itself now applies
            self._locked_until[ip] = now + self._lockout
            return True
        return False


class SessionLimiter:
    """At most ``limit`` concurrent sessions per user."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._active: dict[str, int] = defaultdict(int)

    def acquire(self, user: str) -> bool:
        """Take a slot for ``user``; False when the user already has ``limit`` sessions."""
        if self._active[user] >= self._limit:
            return False
        self._active[user] += 1
        return True

    def release(self, user: str) -> None:
        """Give a slot back."""
        self._active[user] = max(0, self._active[user] - 1)

    def active(self, user: str) -> int:
        """How many sessions ``user`` has now."""
        return self._active[user]
