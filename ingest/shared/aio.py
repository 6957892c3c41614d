"""The one bridge from asyncio to blocking calls (boto3, Secrets Manager, DynamoDB, …).

asyncio code never calls a blocking function directly: it awaits :meth:`Bridge.run`, which
runs the call on one of the bridge's threads (with the caller's context variables, as
:func:`asyncio.to_thread` does) while the event loop keeps moving SSH packets.

**Sizing rule** (the only one): a bridge gets one thread per blocking call its owner lets be
in flight at once, computed from the owner's own limits (the gateway: the part buffers its
memory budget holds; the connector engine: connections x files per connection x parts in
flight), plus :data:`SPARE_THREADS` so that the small calls beside them (a user lookup, a log
shipment, a status write) never queue behind a full data pipeline. An owner whose calls are
only those small ones asks for ``data_calls=0``. A data call beyond the bound waits for a
thread, which is the backpressure its owner already expects from its own limit.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Threads beyond the owner's data calls, for the small calls made beside them.
SPARE_THREADS = 8


class Bridge:
    """A pool of threads for the blocking calls of asyncio code; usable from any loop."""

    def __init__(self, data_calls: int = 0, *, name: str = "blocking") -> None:
        if data_calls < 0:
            raise ValueError(f"data_calls must be 0 or more, not {data_calls}")
        self.workers = data_calls + SPARE_THREADS
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a bridge thread; its result or exception comes back."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self, *, wait: bool = True) -> None:
        """Stop the threads (``wait``: after the calls under way have returned)."""
        self._pool.shutdown(wait=wait)
