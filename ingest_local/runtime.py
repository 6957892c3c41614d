"""The local Lambda service: runs the deployed functions when their event sources fire.

* Each function runs in its own sandbox process (:mod:`ingest_local.worker`) with exactly its
  deployed environment variables, plus the local endpoint and fake credentials.
* S3 notifications: the bucket → function wiring read from the template is installed as an S3
  → SQS notification on a local queue (moto delivers those reliably); each message is one
  asynchronous invocation with the S3 event as it came.
* SQS event source mappings: :class:`~ingest_local.lambda_service.SqsEventSource` with the
  mapping's batch size, batching window and ``ReportBatchItemFailures``; the queue's own
  visibility timeout and redrive policy decide retries and the DLQ.
* DynamoDB stream mappings: :class:`~ingest_local.streams.DynamoStreamSource` (batch size,
  filters, ``ReportBatchItemFailures``, bisection, retries, the OnFailure queue).
* EventBridge rules with a function target: the Lambda target is swapped for a local SQS
  target (moto would try to run the function in Docker); schedules are fired by a timer.
* Asynchronous invocations (S3, EventBridge, schedules): see :mod:`ingest_local.async_events`
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.adapters.aws import AwsTarget
from ingest.errors import ConfigError
from ingest_local.async_events import (
    LAMBDA_RETRY_DELAYS,
    AsyncQueueSource,
    drop_s3_test_events,
)
from ingest_local.deploy import AsyncConfig, DeployedStack, RuleTarget
from ingest_local.lambda_service import ACCOUNT_ID, SqsEventSource
from ingest_local.sandbox import sandbox_environment
from ingest_local.schedule import next_fire_time
from ingest_local.streams import DynamoStreamSource
from ingest_local.worker import FunctionWorker

log = logging.getLogger("ingest_local.runtime")


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


def _received(source: SqsEventSource, function: str) -> Callable[[int], int]:
    def poll(wait: int) -> int:
        result = source.poll_once(wait)
        if result.error:
            log.warning("%s failed a batch of %d: %s", function, result.received, result.error)
        elif result.failed:
            log.info(
                "%s reported %d of %d messages failed", function, result.failed, result.received
            )
        return result.received

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
        async_retry_delays: tuple[int, ...] = LAMBDA_RETRY_DELAYS,
        max_concurrency: int | None = None,
    ) -> None:
        self.deployed = deployed
        self.aws = AwsTarget(region=deployed.region, endpoint_url=deployed.endpoint_url)
        self.sqs = self.aws.shared_client("sqs")
        self.log_dir = log_dir
        self.poll_wait = poll_wait
        self.async_retry_delays = async_retry_delays
        self.failed_events_queue_url = ""
        self.stats = RuntimeStats()
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pollers: list[Callable[[int], int]] = []
        self._queues: list[str] = []  # local and mapped queues, for wait_idle
        self._streams: list[DynamoStreamSource] = []  # for wait_idle too
        self._code_root = code_root
        self._extra_pythonpath = extra_pythonpath
        # Concurrency: an SQS-mapped function gets up to its ScalingConfig.MaximumConcurrency
        # sandboxes and pollers, capped by this machine's cores; everything else runs one.
        self.max_concurrency = max_concurrency or os.cpu_count() or 1
        self.concurrency = {lid: 1 for lid in deployed.functions}
        for mapping in deployed.sqs_mappings:
            wanted = min(mapping.max_concurrency or self.max_concurrency, self.max_concurrency)
            self.concurrency[mapping.function] = max(self.concurrency[mapping.function], wanted)
        self.sandboxes = {
            lid: [self._sandbox(lid, i) for i in range(self.concurrency[lid])]
            for lid in deployed.functions
        }
        #: the first sandbox of each function
        self.workers = {lid: boxes[0] for lid, boxes in self.sandboxes.items()}
        self._idle: dict[str, queue.Queue[FunctionWorker]] = {}
        for lid, boxes in self.sandboxes.items():
            self._idle[lid] = queue.Queue()
            for box in boxes:
                self._idle[lid].put(box)

    def _sandbox(self, lid: str, index: int) -> FunctionWorker:
        spec = self.deployed.functions[lid]
        return FunctionWorker(
            function_name=spec.name,
            handler=spec.handler,
            environment=sandbox_environment(
                spec,
                endpoint_url=self.deployed.endpoint_url,
                region=self.deployed.region,
                code_root=self._code_root,
                extra_pythonpath=self._extra_pythonpath,
            ),
            timeout=spec.timeout,
            memory=spec.memory,
            log_path=self.log_dir / f"{lid}.log",  # sandboxes of a function append to one log
            cwd=self._code_root,
        )

    # --- invocation ---------------------------------------------------------------------------

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Invoke ``function`` (logical id) synchronously in an idle sandbox of it."""
        idle = self._idle.get(function)
        if idle is None:
            raise ConfigError(
                f"no function {function!r} in the stack (known: {sorted(self.sandboxes)})"
            )
        worker = idle.get()
        with self._busy_lock:
            self._busy += 1
            self.stats.invocations[function] = self.stats.invocations.get(function, 0) + 1
        try:
            return worker.invoke(event, str(uuid.uuid4()))
        except Exception:
            with self._busy_lock:
                self.stats.errors[function] = self.stats.errors.get(function, 0) + 1
            raise
        finally:
            idle.put(worker)
            with self._busy_lock:
                self._busy -= 1

    def invoker(self, function: str) -> Callable[[dict[str, Any]], Any]:
        """An invoke callable bound to one function, for event sources."""
        return lambda event: self.invoke(function, event)

    # --- wiring -------------------------------------------------------------------------------

    def _local_queue(self, suffix: str, *, visibility: int) -> str:
        name = f"{self.deployed.stack_name}-local-{suffix}"[:80]
        url: str = self.sqs.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": str(visibility)}
        )["QueueUrl"]
        return url

    def _queue_arn(self, url: str) -> str:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def _async_source(
        self, function: str, suffix: str, unwrap: Callable[[dict[str, Any]], Any] | None = None
    ) -> tuple[str, AsyncQueueSource]:
        """A local queue of asynchronous events for ``function``, and the source polling it."""
        spec = self.deployed.functions[function]
        conf = self.deployed.async_configs.get(function, AsyncConfig())
        # The visibility timeout covers one invocation; retries set their own delay.
        url = self._local_queue(suffix, visibility=spec.timeout + 5)
        source = AsyncQueueSource(
            self.sqs,
            url,
            self.invoker(function),
            function_arn=spec.arn,
            failure_queue_url=conf.on_failure or self.failed_events_queue_url,
            max_retries=conf.max_retries,
            retry_delays=self.async_retry_delays,
        )
        if unwrap is not None:
            source.unwrap = unwrap
        self._add_poller(source.poll_once, url)
        return url, source

    def _wire_s3(self) -> None:
        s3 = self.aws.shared_client("s3")
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for i, note in enumerate(self.deployed.s3_notifications):
            url, _ = self._async_source(
                note.function, f"s3-{i}-{note.function}", drop_s3_test_events
            )
            conf: dict[str, Any] = {
                "Id": f"{note.function}-{i}",
                "QueueArn": self._queue_arn(url),
                "Events": note.events,
            }
            if note.filter_rules:
                conf["Filter"] = {"Key": {"FilterRules": note.filter_rules}}
            by_bucket.setdefault(note.bucket, []).append(conf)
        for bucket, confs in by_bucket.items():
            current = s3.get_bucket_notification_configuration(Bucket=bucket)
            current.pop("ResponseMetadata", None)
            current["QueueConfigurations"] = current.get("QueueConfigurations", []) + confs
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=current
            )

    def _wire_sqs_mappings(self) -> None:
        lam = self.aws.shared_client("lambda")
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
            for _ in range(self.concurrency[mapping.function]):
                self._add_poller(_received(source, mapping.function), mapping.queue_url)

    def _wire_stream_mappings(self) -> None:
        streams = self.aws.shared_client("dynamodbstreams")
        for mapping in self.deployed.stream_mappings:
            spec = mapping.spec
            source = DynamoStreamSource(
                streams,
                mapping.stream_arn,
                self.invoker(spec.function),
                spec,
                sqs_client=self.sqs,
                function_arn=self.deployed.functions[spec.function].arn,
                region=self.deployed.region,
            )
            self._streams.append(source)
            self._start_thread(f"stream-{mapping.logical_id}", self._poll_loop, source.poll_once)

    def _wire_rules(self) -> None:
        events = self.aws.shared_client("events")
        for rule in self.deployed.rules:
            if not rule.enabled:
                continue
            url, _ = self._async_source(rule.function, f"rule-{rule.rule_logical_id}")
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
                    Targets=[{**target, "Arn": self._queue_arn(url)}],
                )
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
        # Where asynchronous events go after their retries when a function has no OnFailure.
        self.failed_events_queue_url = self._local_queue("async-failed-events", visibility=30)
        self._wire_s3()
        self._wire_sqs_mappings()
        self._wire_stream_mappings()
        self._wire_rules()
        # Like provisioned concurrency: the first event does not wait for a cold start.
        for boxes in self.sandboxes.values():
            for box in boxes:
                box.warm()

    def wait_idle(self, timeout: float, *, settle: float = 0.5) -> None:
        """Wait until no invocation runs and every source queue is empty (for tests and demo)."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if (
                self._busy == 0
                and all(self._queue_empty(q) for q in self._queues)
                and not any(s.busy() for s in self._streams)
            ):
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
        for boxes in self.sandboxes.values():
            for box in boxes:
                box.close()
