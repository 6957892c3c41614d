"""One SQS chunk message through the processor: failure recorded, retry scheduled, re-raised.

:func:`handle_chunk_message` is what the processor function calls per message; the chunk's
work itself is :func:`ingest.usecases.processor.process_chunk`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ingest.domain.files import FileStatus
from ingest.domain.messages import ChunkMessage
from ingest.errors import IngestError, PermanentError
from ingest.usecases.ports import FileLedger
from ingest.usecases.processor import ChunkResult, ProcessorPorts, process_chunk

log = logging.getLogger(__name__)


def retry_delay(receive_count: int, *, base: int, max_receive_count: int) -> int | None:
    """Seconds until a failed message is delivered again: ``base`` doubling per delivery.

    None leaves the queue's visibility timeout in charge (no base, or the last delivery,
    which must come back at once so the redrive moves it to the DLQ). SQS caps a message's
    visibility at 12 hours.
    """
    if base <= 0:
        return None
    if receive_count >= max_receive_count:
        return 0
    delay: int = base * 2 ** max(receive_count - 1, 0)
    return min(delay, 12 * 3600)


def handle_chunk_message(
    body: str,
    *,
    receive_count: int,
    max_receive_count: int,
    ports: ProcessorPorts,
    retry_in: Callable[[int], None] | None = None,
    retry_backoff_seconds: int = 0,
    on_file_failed: Callable[[], None] | None = None,
) -> ChunkResult:
    """Process one SQS chunk message, recording FAILED when it will not succeed.

    A permanent error marks the file FAILED at once; any other error does so on the last
    delivery before the queue's redrive moves the message to the dead-letter queue. The
    error is always re-raised so the message is reported as a batch item failure; with
    ``retry_in`` the message comes back after an exponential backoff rather than after the
    queue's (long: 6 times the function's timeout) visibility timeout. ``on_file_failed`` is
    called when this delivery turned the file FAILED (not when it already was).
    """
    msg = ChunkMessage.from_json(body)
    try:
        return process_chunk(msg, ports)
    except Exception as exc:
        last_attempt = receive_count >= max_receive_count
        if isinstance(exc, PermanentError) or last_attempt:
            notes = "; ".join(getattr(exc, "__notes__", []))
            reason = f"chunk {msg.index}: {type(exc).__name__}: {exc}" + (
                f" ({notes})" if notes else ""
            )
            if last_attempt:
                reason += f" (after {receive_count} deliveries; message moved to the DLQ)"
            if _record_failed(msg, reason, ports.ledger) and on_file_failed is not None:
                on_file_failed()
        delay = retry_delay(
            receive_count, base=retry_backoff_seconds, max_receive_count=max_receive_count
        )
        if retry_in is not None and delay is not None:
            try:
                retry_in(delay)
            except Exception:  # the queue's own visibility timeout still applies
                log.exception("could not schedule the retry", extra={"key": msg.key})
        log.warning(
            "chunk failed",
            extra={
                "key": msg.key,
                "chunk": msg.index,
                "receive_count": receive_count,
                "error": str(exc),
                "retryable": not isinstance(exc, PermanentError),
            },
        )
        raise


def _record_failed(msg: ChunkMessage, reason: str, ledger: FileLedger) -> bool:
    """Mark the chunk's file FAILED; whether that changed its status (it was not FAILED)."""
    try:
        before = ledger.get_file(msg.key)
    except IngestError:
        before = None  # the mark below matters more than knowing what it replaced
    try:
        ledger.mark_failed(msg.key, msg.version, reason, msg.ingestion_id)
    except IngestError:
        log.exception("could not record FAILED", extra={"key": msg.key})
        return False
    return (
        before is not None
        and (before.version, before.ingestion) == (msg.version, msg.ingestion_id)
        and before.status != FileStatus.FAILED
    )
