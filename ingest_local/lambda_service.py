"""The Lambda service, emulated: handler lookup, the context object, real-shaped events and
SQS event source mappings with Lambda's delete / partial-batch-failure semantics.

Nothing here imports ``lambdas/``: handlers are found by their ``Handler`` string, the way the
Lambda runtime finds them.
"""

from __future__ import annotations

import base64
import importlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from ingest.adapters.aws import DEFAULT_REGION
from ingest.errors import ConfigError, RetryableError
from ingest.shared.polling import PollTimeoutError, poll_until

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

Handler = Callable[[dict[str, Any], Any], Any]
#: what an event source calls with one event; returns the function's response (or raises).
Invoke = Callable[[dict[str, Any]], Any]

ACCOUNT_ID = "123456789012"  # moto's default account


class HandlerNotFoundError(ConfigError):
    """A function's ``Handler`` string does not name an importable callable."""


class DrainTimeoutError(RetryableError):
    """An event source still had messages in its queue when the drain deadline passed."""


def load_handler(handler: str) -> Handler:
    """Resolve ``"package.module.function"`` to the function, as the Python runtime does."""
    module_name, _, attr = handler.rpartition(".")
    if not module_name or not attr:
        raise HandlerNotFoundError(
            f"handler {handler!r} is not of the form 'module.function'", field="Handler"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise HandlerNotFoundError(
            f"handler {handler!r}: cannot import module {module_name!r}: {exc}", field="Handler"
        ) from exc
    func = getattr(module, attr, None)
    if not callable(func):
        raise HandlerNotFoundError(
            f"handler {handler!r}: module {module_name!r} has no callable {attr!r}",
            field="Handler",
        )
    return func  # type: ignore[no-any-return]


@dataclass
class LambdaContext:
    """The ``context`` argument of a handler, with the attributes the Python runtime provides."""

    function_name: str
    timeout_seconds: float = 300.0
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    region: str = DEFAULT_REGION
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not self._deadline:
            self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        day = datetime.now(UTC).strftime("%Y/%m/%d")
        return f"{day}/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    @property
    def identity(self) -> None:
        return None

    @property
    def client_context(self) -> None:
        return None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation's timeout (never negative)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _event_time() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def s3_object_created_event(
    bucket: str,
    key: str,
    *,
    size: int,
    etag: str,
    version_id: str | None = None,
    region: str = DEFAULT_REGION,
    principal_id: str = "AWS:AIDAEXAMPLE",
    event_name: str = "ObjectCreated:Put",
    configuration_id: str = "local-notification",
) -> dict[str, Any]:
    """An S3 event notification with one ``ObjectCreated`` record, shaped as S3 sends it.

    As in AWS, the key is URL-encoded (``+`` for spaces) and the ETag has no quotes.
    """
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": etag.strip('"'),
        "sequencer": f"{time.time_ns():016X}",
    }
    if version_id is not None:
        obj["versionId"] = version_id
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _event_time(),
        "eventName": event_name,
        "userIdentity": {"principalId": principal_id},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
            "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }
    return {"Records": [record]}


def _lambda_message_attributes(attrs: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attributes → the camel-cased shape Lambda puts in SQS events."""
    out: dict[str, Any] = {}
    for name, value in attrs.items():
        item: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
        out[name] = item
    return out


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from a batch of ``ReceiveMessage`` results."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": _lambda_message_attributes(m.get("MessageAttributes", {})),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


@dataclass
class PollResult:
    """What one poll of an event source did."""

    received: int = 0
    succeeded: int = 0
    failed: int = 0
    error: str | None = None  # the invocation's exception, if it raised


@dataclass
class DrainResult:
    """Totals over a drain."""

    polls: int = 0
    received: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, poll: PollResult) -> None:
        self.polls += 1
        self.received += poll.received
        self.succeeded += poll.succeeded
        self.failed += poll.failed
        if poll.error:
            self.errors.append(poll.error)


def failed_message_ids(
    response: Any, batch_ids: list[str], *, report_batch_item_failures: bool
) -> set[str]:
    """The messages Lambda leaves on the queue after a handler returned ``response``.

    Without ``ReportBatchItemFailures`` a returned response means the whole batch succeeded.
    With it, ``batchItemFailures`` names the failed ones; as in AWS, a malformed entry (no
    ``itemIdentifier``, or one not in the batch) fails the whole batch.
    """
    if not report_batch_item_failures or not isinstance(response, dict):
        return set()
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    ids = set(batch_ids)
    failed: set[str] = set()
    for entry in failures:
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not ident or ident not in ids:
            return ids
        failed.add(ident)
    return failed


class SqsEventSource:
    """One SQS event source mapping: receive a batch, invoke, delete what succeeded.

    Failed messages are not touched: they become visible again when the queue's visibility
    timeout runs out, and the queue's redrive policy moves them to the DLQ once their receive
    count reaches ``maxReceiveCount`` (moto applies redrive on receive, as SQS does).
    """

    def __init__(
        self,
        sqs_client: SQSClient,
        queue_url: str,
        queue_arn: str,
        invoke: Invoke,
        *,
        batch_size: int = 10,
        report_batch_item_failures: bool = True,
        batching_window: float = 0.0,
        region: str = DEFAULT_REGION,
    ) -> None:
        if not 1 <= batch_size <= 10:
            # Lambda allows up to 10,000 with a batching window; one ReceiveMessage gives 10.
            raise ConfigError(f"batch size {batch_size} is outside 1..10", field="BatchSize")
        self.sqs = sqs_client
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.invoke = invoke
        self.batch_size = batch_size
        self.report_batch_item_failures = report_batch_item_failures
        self.batching_window = batching_window
        self.region = region

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.batching_window
        wait = wait_seconds
        while len(messages) < self.batch_size:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size - len(messages),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(got)  # type: ignore[arg-type]
            # Lambda's batching window: keep gathering until the batch is full or it closes.
            if not got or time.monotonic() >= deadline:
                break
            wait = 0
        return messages

    def poll_once(self, wait_seconds: int = 0) -> PollResult:
        """Receive one batch, invoke the function with it and delete the messages it handled."""
        messages = self._receive(wait_seconds)
        if not messages:
            return PollResult()
        ids = [m["MessageId"] for m in messages]
        event = sqs_event(messages, self.queue_arn, self.region)
        try:
            response = self.invoke(event)
        except Exception as exc:  # any error of the function fails the whole batch, as in AWS
            return PollResult(
                received=len(messages), failed=len(messages), error=f"{type(exc).__name__}: {exc}"
            )
        failed = failed_message_ids(
            response, ids, report_batch_item_failures=self.report_batch_item_failures
        )
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            result = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
            if result.get("Failed"):
                raise RuntimeError(f"SQS refused to delete handled messages: {result['Failed']}")
        return PollResult(received=len(messages), succeeded=len(done), failed=len(failed))

    def queue_depth(self) -> tuple[int, int]:
        """(visible, in flight) messages in the queue, as SQS approximates them."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attrs["ApproximateNumberOfMessages"]),
            int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        )

    def drain(
        self, *, timeout: float, idle_polls: int = 2, poll_interval: float = 0.2
    ) -> DrainResult:
        """Poll until the queue has nothing visible or in flight for ``idle_polls`` polls.

        Messages that failed wait out their visibility timeout and are retried (or moved to
        the DLQ by redrive), so a drain takes at least as long as that timeout when anything
        fails. Raises :class:`DrainTimeoutError` if the queue is not empty by ``timeout``.
        """
        totals = DrainResult()
        idle = 0

        def drained() -> DrainResult | None:
            nonlocal idle
            while (poll := self.poll_once()).received:  # no pause while messages keep coming
                totals.add(poll)
                idle = 0
            totals.add(poll)
            idle = idle + 1 if self.queue_depth() == (0, 0) else 0
            return totals if idle >= idle_polls else None

        try:
            return poll_until(
                drained, timeout=timeout, interval=poll_interval, what=f"queue {self.queue_url}"
            )
        except PollTimeoutError:
            visible, in_flight = self.queue_depth()
            raise DrainTimeoutError(
                f"queue {self.queue_url} not drained after {timeout}s: "
                f"{visible} visible, {in_flight} in flight"
            ) from None


def in_process_invoker(handler: Handler, function_name: str, *, timeout: float = 300.0) -> Invoke:
    """An :data:`Invoke` that calls ``handler`` in this process with a fresh context each time."""

    def invoke(event: dict[str, Any]) -> Any:
        return handler(event, LambdaContext(function_name=function_name, timeout_seconds=timeout))

    return invoke
