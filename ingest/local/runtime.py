"""The local Lambda service: runs the deployed functions when their event sources fire.

* Each function runs in its own sandbox process (:mod:`ingest.local.worker`) with exactly its
  deployed environment variables, plus the local endpoint and fake credentials.
* S3 notifications: the bucket → function wiring read from the template is installed as an S3
  → SQS notification on a local queue (moto delivers those reliably); each message is one
  asynchronous invocation with the S3 event as it came.
* SQS event source mappings: :class:`~ingest.local.lambda_service.SqsEventSource` with the
  mapping's batch size, batching window and ``ReportBatchItemFailures``; the queue's own
  visibility timeout and redrive policy decide retries and the DLQ.
* EventBridge rules with a function target: the Lambda target is swapped for a local SQS
  target (moto would try to run the function in Docker); schedules are fired by a timer.
* Asynchronous invocations (S3, EventBridge, schedules) are retried twice on error, as Lambda
  does, then parked in a local failed-events queue.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.aws import AwsTarget
from ingest.errors import ConfigError
from ingest.local.deploy import DeployedStack, FunctionSpec, RuleTarget
from ingest.local.lambda_service import ACCOUNT_ID, SqsEventSource
from ingest.local.schedule import next_fire_time
from ingest.local.worker import FunctionWorker

log = logging.getLogger("ingest.local.runtime")

#: Lambda retries a failed asynchronous invocation twice before giving up on the event.
ASYNC_MAX_RECEIVES = 3
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
#: passed through from the parent so Python and locale behave as in the caller's shell.
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


def sandbox_environment(
    spec: FunctionSpec,
    *,
    endpoint_url: str,
    region: str,
    code_root: Path,
    extra_pythonpath: list[Path] | None = None,
) -> dict[str, str]:
    """The environment a function's sandbox gets: its deployed variables plus the runtime's."""
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(code_root),
            "_HANDLER": spec.handler,
            # As under `sam local`: no X-Ray daemon here, so Powertools' tracer stays off.
            "AWS_SAM_LOCAL": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(str(p) for p in [code_root, *(extra_pythonpath or [])]),
        }
    )
    env.update(spec.environment)
    return env


@dataclass
class AsyncQueueSource:
    """A local queue whose messages are asynchronous invocations (one event per message)."""

    sqs: Any
    queue_url: str
    invoke: Callable[[dict[str, Any]], Any]
    unwrap: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda body: body

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive and invoke up to 10 events; returns how many messages were received."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        for message in messages:
            event = self.unwrap(json.loads(message["Body"]))
            if event is not None:
                try:
                    self.invoke(event)
                except Exception as exc:  # left on the queue: retried, then parked by redrive
                    log.warning("async invocation failed, will retry: %s", exc)
                    continue
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)


def _drop_s3_test_events(body: dict[str, Any]) -> dict[str, Any] | None:
    # S3 sends an s3:TestEvent when a notification is configured; Lambda never sees those.
    return None if body.get("Event") == "s3:TestEvent" else body


def scheduled_event(rule: RuleTarget, region: str, when: datetime) -> dict[str, Any]:
    """The event EventBridge sends to a scheduled rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule.rule_arn],
        "detail": {},
    }


def _received(source: SqsEventSource) -> Callable[[int], int]:
    def poll(wait: int) -> int:
        return source.poll_once(wait).received

    return poll


@dataclass
class RuntimeStats:
    """Counters for ``ingest up``'s log line and for tests."""

    invocations: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


class LambdaRuntime:
    """Plays the Lambda service for one deployed stack (see the module docstring)."""

    def __init__(
        self,
        deployed: DeployedStack,
        *,
        code_root: Path,
        log_dir: Path,
        extra_pythonpath: list[Path] | None = None,
        poll_wait: int = 1,
    ) -> None:
        self.deployed = deployed
        self.aws = AwsTarget(region=deployed.region, endpoint_url=deployed.endpoint_url)
        self.sqs = self.aws.client("sqs")
        self.log_dir = log_dir
        self.poll_wait = poll_wait
        self.stats = RuntimeStats()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pollers: list[Callable[[int], int]] = []
        self._queues: list[str] = []  # local and mapped queues, for wait_idle
        self.workers = {
            lid: FunctionWorker(
                function_name=spec.name,
                handler=spec.handler,
                environment=sandbox_environment(
                    spec,
                    endpoint_url=deployed.endpoint_url,
                    region=deployed.region,
                    code_root=code_root,
                    extra_pythonpath=extra_pythonpath,
                ),
                timeout=spec.timeout,
                memory=spec.memory,
                log_path=log_dir / f"{lid}.log",
                cwd=code_root,
            )
            for lid, spec in deployed.functions.items()
        }

    # --- invocation ---------------------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke ``function`` (logical id) synchronously in its sandbox."""
        worker = self.workers.get(function)
        if worker is None:
            raise ConfigError(
                f"no function {function!r} in the stack (known: {sorted(self.workers)})"
            )
        with self._busy_lock:
            self._busy += 1
        self.stats.invocations[function] = self.stats.invocations.get(function, 0) + 1
        try:
            return worker.invoke(event, str(uuid.uuid4()))
        except Exception:
            self.stats.errors[function] = self.stats.errors.get(function, 0) + 1
            raise
        finally:
            with self._busy_lock:
                self._busy -= 1

    def invoker(self, function: str) -> Callable[[dict[str, Any]], Any]:
        """An invoke callable bound to one function, for event sources."""
        return lambda event: self.invoke(function, event)

    # --- wiring -------------------------------------------------------------------------------

    def _local_queue(self, suffix: str, *, visibility: int, dlq_arn: str | None) -> tuple[str, str]:
        name = f"{self.deployed.stack_name}-local-{suffix}"[:80]
        attrs = {"VisibilityTimeout": str(visibility)}
        if dlq_arn:
            attrs["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": ASYNC_MAX_RECEIVES}
            )
        url = self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return url, arn

    def _wire_s3(self, failed_arn: str) -> None:
        s3 = self.aws.client("s3")
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for i, note in enumerate(self.deployed.s3_notifications):
            spec = self.deployed.functions[note.function]
            url, arn = self._local_queue(
                f"s3-{i}-{note.function}", visibility=spec.timeout + 5, dlq_arn=failed_arn
            )
            conf: dict[str, Any] = {
                "Id": f"{note.function}-{i}",
                "QueueArn": arn,
                "Events": note.events,
            }
            if note.filter_rules:
                conf["Filter"] = {"Key": {"FilterRules": note.filter_rules}}
            by_bucket.setdefault(note.bucket, []).append(conf)
            source = AsyncQueueSource(
                self.sqs, url, self.invoker(note.function), _drop_s3_test_events
            )
            self._add_poller(source.poll_once, url)
        for bucket, confs in by_bucket.items():
            current = s3.get_bucket_notification_configuration(Bucket=bucket)
            current.pop("ResponseMetadata", None)
            current["QueueConfigurations"] = current.get("QueueConfigurations", []) + confs
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=current
            )

    def _wire_sqs_mappings(self) -> None:
        lam = self.aws.client("lambda")
        for mapping in self.deployed.sqs_mappings:
            if not mapping.enabled:
                continue
            # moto would poll the queue itself and try to run the function in Docker: turn its
            # copy of the mapping off; this runtime plays the mapping instead.
            lam.update_event_source_mapping(UUID=mapping.uuid, Enabled=False)
            source = SqsEventSource(
                self.sqs,
                mapping.queue_url,
                mapping.queue_arn,
                self.invoker(mapping.function),
                batch_size=mapping.batch_size,
                report_batch_item_failures=mapping.report_batch_item_failures,
                batching_window=mapping.batching_window,
                region=self.deployed.region,
            )
            self._add_poller(_received(source), mapping.queue_url)

    def _wire_rules(self, failed_arn: str) -> None:
        events = self.aws.client("events")
        for rule in self.deployed.rules:
            if not rule.enabled:
                continue
            spec = self.deployed.functions[rule.function]
            url, arn = self._local_queue(
                f"rule-{rule.rule_logical_id}", visibility=spec.timeout + 5, dlq_arn=failed_arn
            )
            target = {k: v for k, v in rule.target.items() if k not in ("Arn", "RoleArn")}
            events.remove_targets(
                Rule=rule.rule_name, EventBusName=rule.event_bus, Ids=[target["Id"]]
            )
            if rule.event_pattern:
                # Only pattern rules get the SQS target: moto would match a schedule-only rule
                # against every event put on the bus. Schedules are fired by the timer below.
                events.put_targets(
                    Rule=rule.rule_name,
                    EventBusName=rule.event_bus,
                    Targets=[{**target, "Arn": arn}],
                )
            source = AsyncQueueSource(self.sqs, url, self.invoker(rule.function))
            self._add_poller(source.poll_once, url)
            if rule.schedule:
                self._start_thread(
                    f"schedule-{rule.rule_logical_id}", self._schedule_loop, rule, url
                )

    def _schedule_loop(self, rule: RuleTarget, queue_url: str) -> None:
        assert rule.schedule is not None
        fire_at = next_fire_time(rule.schedule, datetime.now(UTC))
        while not self._stop.is_set():
            delay = (fire_at - datetime.now(UTC)).total_seconds()
            if self._stop.wait(max(0.0, min(delay, 1.0))):
                return
            if datetime.now(UTC) >= fire_at:
                event = scheduled_event(rule, self.deployed.region, fire_at)
                self.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
                fire_at = next_fire_time(rule.schedule, fire_at)

    def _add_poller(self, poll: Callable[[int], int], queue_url: str) -> None:
        self._pollers.append(poll)
        self._queues.append(queue_url)
        self._start_thread(f"poller-{len(self._pollers)}", self._poll_loop, poll)

    def _poll_loop(self, poll: Callable[[int], int]) -> None:
        while not self._stop.is_set():
            try:
                poll(self.poll_wait)
            except Exception:  # a poller must outlive any one failure, as the service does
                log.exception("event source poll failed")
                self._stop.wait(1.0)

    def _start_thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the local queues, install the wiring and start polling."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        failed_url, failed_arn = self._local_queue(
            "async-failed-events", visibility=30, dlq_arn=None
        )
        self.failed_events_queue_url = failed_url
        self._wire_s3(failed_arn)
        self._wire_sqs_mappings()
        self._wire_rules(failed_arn)

    def wait_idle(self, timeout: float, *, settle: float = 0.5) -> None:
        """Wait until no invocation runs and every source queue is empty (for tests and demo)."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self._busy == 0 and all(self._queue_empty(q) for q in self._queues):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            time.sleep(0.1)
        raise TimeoutError(f"the local Lambda service was still busy after {timeout}s")

    def _queue_empty(self, url: str) -> bool:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(int(v) == 0 for v in attrs.values())

    def stop(self) -> None:
        """Stop polling, let running invocations finish, then stop the sandboxes."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.poll_wait + 30)
        for worker in self.workers.values():
            worker.close()
