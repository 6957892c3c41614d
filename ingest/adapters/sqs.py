"""The SQS adapter: chunk messages sent with SendMessageBatch, failed entries retried."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct

from ingest.adapters.sdk import translated, unavailable
from ingest.errors import StorageUnavailableError
from ingest.shared.backoff import Backoff

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

log = logging.getLogger(__name__)


#: Entries SQS failed on its side (not the sender's fault) are sent again up to 5 times.
SEND_BACKOFF = Backoff(attempts=5, base=0.1, cap=3.0)


class SqsQueue:
    """Sends chunk messages with SendMessageBatch, ten at a time, retrying failed entries."""

    MAX_BATCH = 10

    def __init__(
        self,
        client: SQSClient,
        queue_url: str,
        *,
        backoff: Backoff = SEND_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sqs = client
        self._url = queue_url
        self._backoff = backoff
        self._sleep = sleep

    def send_all(self, bodies: Iterable[dict[str, Any]]) -> int:
        """Send every body as JSON; raises ``StorageUnavailableError`` if some keep failing."""
        return self.send_raw(json.dumps(b, separators=(",", ":")) for b in bodies)

    def send_raw(self, bodies: Iterable[str]) -> int:
        """Send message bodies as they are, ten per ``SendMessageBatch``."""
        batch: list[str] = []
        sent = 0
        for body in bodies:
            batch.append(body)
            if len(batch) == self.MAX_BATCH:
                sent += self._send_batch(batch)
                batch = []
        if batch:
            sent += self._send_batch(batch)
        return sent

    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again in ``seconds`` (a retry's backoff)."""
        with translated("sqs", "ChangeMessageVisibility"):
            self._sqs.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )

    def _send_batch(self, bodies: list[str]) -> int:
        pending = {str(i): body for i, body in enumerate(bodies)}
        for attempt in range(self._backoff.attempts):
            if attempt:
                self._sleep(self._backoff.delay(attempt))
            try:
                resp = self._sqs.send_message_batch(
                    QueueUrl=self._url,
                    Entries=[{"Id": i, "MessageBody": body} for i, body in pending.items()],
                )
            except (ClientError, BotoCoreError) as exc:
                raise unavailable(exc, "sqs", "SendMessageBatch") from exc
            for ok in resp.get("Successful", []):
                pending.pop(ok["Id"], None)
            failed = resp.get("Failed", [])
            if not pending:
                return len(bodies)
            sender_faults = [f for f in failed if f.get("SenderFault")]
            if sender_faults:
                raise StorageUnavailableError(
                    "sqs", "SendMessageBatch", f"rejected entries: {sender_faults}"
                )
            log.warning(
                "retrying failed SendMessageBatch entries",
                extra={"failed": len(pending), "attempt": attempt + 1},
            )
        raise StorageUnavailableError(
            "sqs", "SendMessageBatch", f"{len(pending)} entries still failing after retries"
        )


#: empty receives a peek tries again while the DLQ still counts messages
_PEEK_MISSES = 3


class DeadLetter(Struct, frozen=True):
    """A message received from the dead-letter queue."""

    body: str
    receipt_handle: str
    message_id: str = ""
    #: deliveries so far (SQS keeps counting across the move to the DLQ)
    receive_count: int = 0
    #: when the message was first received, from the ingest queue: its first failure began
    first_received_at: float | None = None
    #: when it was sent to the ingest queue
    sent_at: float | None = None


def _dead_letter(message: Mapping[str, Any]) -> DeadLetter:
    attrs = message.get("Attributes", {})

    def epoch(name: str) -> float | None:
        value = attrs.get(name)
        return int(value) / 1000 if value else None

    return DeadLetter(
        body=message["Body"],
        receipt_handle=message["ReceiptHandle"],
        message_id=message.get("MessageId", ""),
        receive_count=int(attrs.get("ApproximateReceiveCount", 0)),
        first_received_at=epoch("ApproximateFirstReceiveTimestamp"),
        sent_at=epoch("SentTimestamp"),
    )


class DeadLetterQueue:
    """The ingest queue's DLQ: take messages, send them back to the queue, then delete them.

    Not ``StartMessageMoveTask``: the redrive needs each message's body, to mark its file as
    being retried before the message is back on the queue.
    """

    def __init__(
        self, client: SQSClient, dlq_url: str, queue: SqsQueue, *, wait_seconds: int = 1
    ) -> None:
        self._sqs = client
        self._url = dlq_url
        self._queue = queue
        self._wait = wait_seconds

    def take(self, limit: int, *, hold_seconds: int = 60) -> list[DeadLetter]:
        """Up to ``limit`` (≤ 10) messages, invisible for ``hold_seconds`` while they are moved
        (or looked at)."""
        try:
            got = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=max(1, min(10, limit)),
                WaitTimeSeconds=self._wait,
                VisibilityTimeout=hold_seconds,
                AttributeNames=["All"],
            ).get("Messages", [])
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "sqs", "ReceiveMessage") from exc
        return [_dead_letter(m) for m in got]

    def release(self, letters: list[DeadLetter]) -> None:
        """Make taken messages visible in the DLQ again, at once (they stay there)."""
        for start in range(0, len(letters), 10):
            batch = letters[start : start + 10]
            try:
                self._sqs.change_message_visibility_batch(
                    QueueUrl=self._url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": letter.receipt_handle,
                            "VisibilityTimeout": 0,
                        }
                        for i, letter in enumerate(batch)
                    ],
                )
            except (ClientError, BotoCoreError) as exc:
                raise unavailable(exc, "sqs", "ChangeMessageVisibilityBatch") from exc

    def peek(self, *, limit: int = 1000) -> list[DeadLetter]:
        """Every message waiting (up to ``limit``), each once, left in the DLQ as it was."""
        seen: dict[str, DeadLetter] = {}
        misses = 0
        try:
            while len(seen) < limit:
                # each taken message stays hidden until the end, so none is read twice
                batch = self.take(min(10, limit - len(seen)), hold_seconds=30)
                if not batch:
                    if self.remaining() == 0 or misses >= _PEEK_MISSES:
                        break
                    misses += 1  # a short poll can miss messages the queue still counts
                    continue
                seen.update((letter.message_id, letter) for letter in batch)
        finally:
            self.release(list(seen.values()))
        return list(seen.values())

    def return_to_queue(self, letters: list[DeadLetter]) -> None:
        """Send to the ingest queue first, then delete from the DLQ (never lost)."""
        self._queue.send_raw(letter.body for letter in letters)
        try:
            resp = self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": letter.receipt_handle}
                    for i, letter in enumerate(letters)
                ],
            )
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "sqs", "DeleteMessageBatch") from exc
        if resp.get("Failed"):
            # sent twice at worst: the processor counts a chunk once however often it comes
            log.warning("some redriven messages stay in the DLQ", extra={"failed": resp["Failed"]})

    def remaining(self) -> int:
        """Messages the DLQ counts as waiting (SQS's approximation)."""
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=self._url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "sqs", "GetQueueAttributes") from exc
        return int(attrs.get("ApproximateNumberOfMessages", 0))
