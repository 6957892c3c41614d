"""The gateway-wide memory budget for transfer buffers.

Every upload part buffer, every out-of-order write parked by an upload and every download
read-ahead block is charged here, so the gateway's transfer memory stays under
``Limits.buffer_budget_bytes`` however many sessions and handles are open. An upload that
needs more waits (up to ``Limits.buffer_wait_seconds``) for another transfer to give some
back — backpressure, like the parts-in-flight limit — and is refused with
:class:`BufferBudgetExhausted` if none comes. A download that finds the budget spent reads
without caching instead of waiting.

Full part buffers are kept for reuse (up to ``keep_free`` of them, still charged) because
allocating and zero-filling 8 MiB per part costs more than reusing one; anyone who needs
the memory for something else takes it from that free list first.
"""

from __future__ import annotations

import asyncio

MIB = 1024 * 1024


class BufferBudgetExhausted(Exception):
    """No buffer memory came free in time; the message is what the SFTP client is told."""


class BufferBudget:
    """A byte budget shared by every transfer of one gateway (single event loop)."""

    def __init__(self, limit: int, *, wait_seconds: float, keep_free: int = 0) -> None:
        self.limit = limit
        self._wait = wait_seconds
        self._keep_free = keep_free
        self._charged = 0
        self._free: list[bytearray] = []
        self._waiters: list[asyncio.Future[None]] = []
        self.peak = 0

    @property
    def charged(self) -> int:
        """Bytes charged now: buffers in use, parked writes, download blocks, free buffers."""
        return self._charged

    @property
    def in_use(self) -> int:
        """Bytes charged and held by transfers (the free list excluded)."""
        return self._charged - sum(len(b) for b in self._free)

    @property
    def waiting(self) -> int:
        """Transfers waiting for memory now."""
        return sum(1 for w in self._waiters if not w.done())

    async def take_part(self, size: int) -> bytearray:
        """A part buffer of ``size`` bytes (reused when one is free); may wait."""
        if self._free and len(self._free[-1]) == size:
            return self._free.pop()
        await self.reserve(size)
        return bytearray(size)

    def give_part(self, buf: bytearray, size: int) -> None:
        """Return a buffer taken with :meth:`take_part` (``size`` is what was taken)."""
        if len(buf) == size and len(self._free) < self._keep_free and not self.waiting:
            self._free.append(buf)
        else:
            self.release(size)

    async def reserve(self, size: int) -> None:
        """Charge ``size`` bytes, waiting for others to release some if the budget is spent."""
        if size > self.limit:
            raise BufferBudgetExhausted(self._message(size))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while not self.try_reserve(size):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BufferBudgetExhausted(self._message(size))
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass  # one last try_reserve at the top, then the deadline refuses
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def try_reserve(self, size: int) -> bool:
        """Charge ``size`` bytes if they fit now (dropping free buffers to make room)."""
        while self._charged + size > self.limit and self._free:
            self._charged -= len(self._free.pop())
        if self._charged + size > self.limit:
            return False
        self._charged += size
        self.peak = max(self.peak, self._charged)
        return True

    def release(self, size: int) -> None:
        """Give back ``size`` charged bytes and wake whoever waits for memory."""
        self._charged -= size
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _message(self, size: int) -> str:
        return (
            f"the gateway's transfer memory ({self.limit // MIB} MiB) is in use by other "
            f"transfers: no room for {size} more bytes after waiting {self._wait:g} s; "
            "try again later"
        )
