"""Lockout and session-limit bookkeeping with a controlled clock."""

from __future__ import annotations

from ingest_local.gateway.auth import AuthAttempts, AuthGuard, SessionLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_within_the_window_lock_the_address_for_a_while() -> None:
    clock = Clock()
    guard = AuthGuard(max_failures=3, window=60, lockout=300, clock=clock)
    assert not guard.record_failure("10.0.0.1")
    clock.now += 70  # the first failure leaves the window
    assert not guard.record_failure("10.0.0.1")
    assert not guard.record_failure("10.0.0.1")
    assert not guard.is_locked("10.0.0.1")
    assert guard.record_failure("10.0.0.1")
    assert guard.is_locked("10.0.0.1")
    assert not guard.is_locked("10.0.0.2")  # per address
    clock.now += 299
    assert guard.is_locked("10.0.0.1")
    clock.now += 2
    assert not guard.is_locked("10.0.0.1")
    assert not guard.record_failure("10.0.0.1")  # counting starts afresh


def test_clear_lifts_a_lockout_and_forgets_failures() -> None:
    clock = Clock()
    guard = AuthGuard(max_failures=2, window=60, lockout=300, clock=clock)
    for ip in ("10.0.0.1", "10.0.0.2"):
        guard.record_failure(ip)
        guard.record_failure(ip)
    guard.record_failure("10.0.0.3")
    assert guard.clear("10.0.0.1") == ["10.0.0.1"]
    assert not guard.is_locked("10.0.0.1")
    assert guard.is_locked("10.0.0.2")
    assert sorted(guard.clear()) == ["10.0.0.2"]
    assert not guard.record_failure("10.0.0.3")  # its earlier failure was forgotten too


def test_attempts_count_refused_keys_and_repeated_signatures_only() -> None:
    attempts = AuthAttempts(limit=3)
    assert not attempts.tried
    assert not attempts.refused()
    assert not attempts.refused()
    assert not attempts.accepted(b"right")  # the query
    assert not attempts.accepted(b"right")  # the signed request
    assert attempts.failures == 2
    assert attempts.tried
    assert attempts.accepted(b"right")  # asked again: its signature was refused
    assert attempts.exhausted


def test_session_limit_per_user() -> None:
    limiter = SessionLimiter(2)
    assert limiter.acquire("acme")
    assert limiter.acquire("acme")
    assert not limiter.acquire("acme")
    assert limiter.acquire("globex")
    limiter.release("acme")
    assert limiter.active("acme") == 1
    assert limiter.acquire("acme")
    for _ in range(3):
        limiter.release("acme")
    assert limiter.active("acme") == 0
    assert limiter._active == {"globex": 1}  # no entry left behind per name or address
