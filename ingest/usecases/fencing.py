"""A newer version of a file always wins: chunk leases fence the writes of older versions.

Once fanout registers a newer version (or a new ingestion) of a key, no row of an older one is
written after any row of the newer one:

1. A chunk takes its lease, and only then checks that its ingestion is the file's current
   one. (An older chunk that took its lease after the newer one looked for leases sees the new
   version in this check, and drops itself.)
2. A current chunk writes only once no lease of another ingestion of the key is live: it waits
   for them here, a little, then gives the message back as retryable (``LeaseBusyError``).
3. While it writes, a chunk checks every ``CHECK_SECONDS`` that it is still current, and
   renews its lease; superseded, it stops (``StaleVersionError``) without sending another
   batch, waits for the batch in flight, and gives its lease up. A newer version therefore
   waits at most about ``CHECK_SECONDS`` plus one request.
4. A request is sent only while the lease has more than ``SEND_MARGIN`` seconds to run, so a
   chunk that can no longer renew (or whose process stalls) stops before its lease can lapse
   under a newer version's writes. ``SEND_MARGIN`` is longer than one request can take with
   the records client's timeouts and retries (``record_sink.RECORDS_CLIENT_CONFIG``; a test
   holds the two together).

The cost on the fast path: one lease put and one ledger read every ``CHECK_SECONDS``, and a
clock read per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

from ingest.domain.messages import ChunkMessage
from ingest.errors import IngestError, LeaseBusyError, LeaseLapsedError, StaleVersionError
from ingest.usecases.ports import ChunkLeases, FileLedger, Lease

log = logging.getLogger(__name__)

LEASE_TTL = 300.0
CHECK_SECONDS = 5.0
SEND_MARGIN = 120.0
#: how long a chunk waits for an older version's chunks before it gives its message back
WAIT_FOR_OLDER = 60.0
WAIT_POLL = 1.0


class VersionFence:
    """The lease of one chunk while it writes, and the checks that keep it honest."""

    def __init__(
        self,
        msg: ChunkMessage,
        ledger: FileLedger,
        leases: ChunkLeases,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._msg = msg
        self._ledger = ledger
        self._leases = leases
        self._clock = clock
        self._sleep = sleep
        self._lease = Lease(msg.key, msg.version, msg.ingestion_id, msg.index)
        self._lock = threading.Lock()
        self._valid_until = 0.0
        self._checked_at = 0.0

    def __enter__(self) -> VersionFence:
        self._valid_until = self._leases.hold(self._lease, LEASE_TTL)
        self._checked_at = self._clock()
        try:
            self._check_current()
            self._wait_for_older()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    # --- called by the record sink -------------------------------------------------------

    def before_send(self) -> None:
        """Before each request: check and renew when due; never send on a lapsing lease."""
        if self._clock() - self._checked_at >= CHECK_SECONDS:
            self.check()
        if self._clock() > self._valid_until - SEND_MARGIN:
            raise LeaseLapsedError(
                f"{self._msg.key}: chunk {self._msg.index} could not renew its lease in time"
            )

    def check(self) -> None:
        """Still the current ingestion? Then renew the lease; else stop (StaleVersionError)."""
        with self._lock:
            self._check_current()
            self._valid_until = self._leases.hold(self._lease, LEASE_TTL)
            self._checked_at = self._clock()

    # --- helpers -------------------------------------------------------------------------

    def _check_current(self) -> None:
        entry = self._ledger.get_file(self._msg.key)
        if entry is None or (entry.version, entry.ingestion) != (
            self._msg.version,
            self._msg.ingestion_id,
        ):
            raise StaleVersionError(
                f"{self._msg.key}: superseded by "
                f"{f'{entry.version} (ingestion {entry.ingestion})' if entry else 'nothing'} "
                f"while chunk {self._msg.index} of {self._msg.version} was being written"
            )

    def _wait_for_older(self) -> None:
        deadline = self._clock() + WAIT_FOR_OLDER
        while others := self._leases.others_live(self._lease):
            if self._clock() >= deadline:
                raise LeaseBusyError(
                    f"{self._msg.key}: {len(others)} chunk(s) of an older version are still "
                    "being written"
                )
            log.info(
                "waiting for an older version's chunks",
                extra={"key": self._msg.key, "chunk": self._msg.index, "others": len(others)},
            )
            self._sleep(WAIT_POLL)
            self._check_current()

    def _release(self) -> None:
        try:
            self._leases.release(self._lease)
        except IngestError:  # it expires on its own: a newer version waits at most LEASE_TTL
            log.warning("could not release a chunk lease", extra={"key": self._msg.key})
