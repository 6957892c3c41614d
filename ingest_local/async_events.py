"""Asynchronous invocations (S3 notifications, EventBridge rules, schedules), as Lambda runs them.

Each local queue message is one event. A failed invocation is retried after a delay (Lambda:
about 1 and then 2 minutes) up to the function's ``MaximumRetryAttempts`` (default 2). When
retries are exhausted, an invocation record goes to the function's ``OnFailure`` SQS
destination (``EventInvokeConfig``), or, without one, to the local failed-events queue.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest_local.worker import FunctionCrashError, FunctionError, FunctionTimeoutError

log = logging.getLogger("ingest_local.async_events")

#: Lambda's delays before the first and second retry of an asynchronous event.
LAMBDA_RETRY_DELAYS = (60, 120)


def error_payload(exc: Exception) -> dict[str, Any]:
    """The ``responsePayload`` Lambda records for a failed invocation."""
    if isinstance(exc, FunctionError):
        return {
            "errorType": exc.error_type,
            "errorMessage": exc.error_message,
            "stackTrace": exc.trace.splitlines(),
        }
    if isinstance(exc, FunctionTimeoutError):
        return {"errorType": "Sandbox.Timedout", "errorMessage": str(exc)}
    if isinstance(exc, FunctionCrashError):
        return {"errorType": "Runtime.ExitError", "errorMessage": str(exc)}
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


def failure_record(
    event: dict[str, Any], exc: Exception, *, function_arn: str, attempts: int
) -> dict[str, Any]:
    """The invocation record Lambda sends to an ``OnFailure`` destination."""
    now = datetime.now(UTC)
    return {
        "version": "1.0",
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": error_payload(exc),
    }


def drop_s3_test_events(body: dict[str, Any]) -> dict[str, Any] | None:
    """S3 sends an ``s3:TestEvent`` when a notification is configured; Lambda never sees it."""
    return None if body.get("Event") == "s3:TestEvent" else body


@dataclass
class AsyncQueueSource:
    """A local queue whose messages are asynchronous invocations of one function."""

    sqs: Any
    queue_url: str
    invoke: Callable[[dict[str, Any]], Any]
    function_arn: str
    failure_queue_url: str
    max_retries: int = 2
    retry_delays: Sequence[int] = LAMBDA_RETRY_DELAYS
    unwrap: Callable[[dict[str, Any]], dict[str, Any] | None] = field(default=lambda body: body)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive and invoke up to 10 events; returns how many messages were received."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        for message in messages:
            self._handle(message)
        return len(messages)

    def _handle(self, message: dict[str, Any]) -> None:
        event = self.unwrap(json.loads(message["Body"]))
        if event is not None:
            attempts = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            try:
                self.invoke(event)
            except Exception as exc:  # the function failed: retry later, or give up
                if attempts <= self.max_retries:
                    delay = self.retry_delays[min(attempts, len(self.retry_delays)) - 1]
                    log.warning(
                        "async invocation failed (attempt %d), retry in %ds: %s",
                        attempts,
                        delay,
                        exc,
                    )
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=delay,
                    )
                    return
                log.error("async invocation failed %d times, giving up: %s", attempts, exc)
                record = failure_record(
                    event, exc, function_arn=self.function_arn, attempts=attempts
                )
                self.sqs.send_message(
                    QueueUrl=self.failure_queue_url, MessageBody=json.dumps(record)
                )
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
