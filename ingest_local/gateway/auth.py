"""Login policy bookkeeping: lockout of source addresses, attempts per connection, and
session limits.

What counts as a failure follows OpenSSH and SFTPGo's defender: a *failed login* is a
connection that ends without authenticating after it tried (or that used up its attempts),
not each key an agent offers before the right one. A key that is refused at the offer stage
counts only towards the connection's own attempt cap (``MaxAuthTries``). A connection that
authenticates in the end adds nothing to its address's failures.

The SSH connection (``connection.py``) asks these; they hold no SSH state themselves.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable

# the partner registry validates names and reads the API's "no such user" as these do
from ingest.adapters.partners import USER_NAME, USER_NOT_FOUND

__all__ = ["USER_NAME", "USER_NOT_FOUND", "AuthAttempts", "AuthGuard", "SessionLimiter"]


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
        """Count one failed login; True if it locks the address out."""
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

    def clear(self, ip: str | None = None) -> list[str]:
        """Lift the lockout and forget the failures of ``ip`` (of every address if None);
        returns the addresses that were locked out."""
        locked = [a for a in list(self._locked_until) if self.is_locked(a)]
        if ip is None:
            self._locked_until.clear()
            self._failures.clear()
            return locked
        self._locked_until.pop(ip, None)
        self._failures.pop(ip, None)
        return [a for a in locked if a == ip]


class AuthAttempts:
    """One connection's failed authentication requests, counted as OpenSSH's MaxAuthTries.

    A refused key is one failure. An accepted key may be asked about twice (the query, then
    the signed request); a third request for it means its signature was refused, and
    counts. ``exhausted`` says when the connection should be cut off.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.failures = 0
        self._accepted: Counter[bytes] = Counter()

    @property
    def tried(self) -> bool:
        """Whether the client has made any authentication request."""
        return bool(self.failures or self._accepted)

    @property
    def exhausted(self) -> bool:
        return self.failures >= self.limit

    def refused(self) -> bool:
        """Count a refused key; True once the connection has no attempts left."""
        self.failures += 1
        return self.exhausted

    def accepted(self, key_data: bytes) -> bool:
        """Count a request for an accepted key; True once the connection has no attempts left."""
        self._accepted[key_data] += 1
        if self._accepted[key_data] > 2:
            self.failures += 1
        return self.exhausted


class SessionLimiter:
    """At most ``limit`` concurrent sessions per user (or logins in progress per address)."""

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
        left = self._active[user] - 1
        if left > 0:
            self._active[user] = left
        else:
            del self._active[user]  # no entry per name ever seen: names may be addresses

    def active(self, user: str) -> int:
        """How many sessions ``user`` has now."""
        return self._active.get(user, 0)
