"""The local Lambda service end to end: template → moto → sandboxes → event sources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto.s3 import notifications
from support_aws import wait_for

from ingest.adapters.aws import AwsTarget
from ingest_local import runtime as runtime_module
from ingest_local.deploy import DeployedStack, deploy_template
from ingest_local.moto_fidelity import enrich_s3_event_records
from ingest_local.runtime import LambdaRuntime
from ingest_local.worker import FunctionCrashError, FunctionError, FunctionTimeoutError

HERE = Path(__file__).parent
TEMPLATE = HERE / "runtime_template.yaml"


@pytest.fixture
def deployed(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> DeployedStack:
    # What `ingest up` does in its own process; restored after the test for other tests.
    monkeypatch.setattr(notifications, "_get_s3_event", notifications._get_s3_event)
    enrich_s3_event_records()
    return deploy_template(AwsTarget("us-east-1", moto_server), TEMPLATE, stack_name="rt")


@pytest.fixture
def runtime(deployed: DeployedStack, tmp_path: Path) -> Iterator[LambdaRuntime]:
    # One sandbox per function: the Work queue's 1 s visibility timeout (short, for redrive)
    # would otherwise let a second poller receive a batch that is still being handled.
    rt = LambdaRuntime(deployed, code_root=HERE, log_dir=tmp_path / "logs", max_concurrency=1)
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


def seen(deployed: DeployedStack, marker: str, *, at_least: int, timeout: float = 30) -> list[Any]:
    """The events the sandboxed handler recorded under seen/<marker>/, waiting for some."""
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
    bucket = deployed.physical_ids["SeenBucket"]

    def keys() -> list[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"seen/{marker}/").get("Contents", [])
        return [o["Key"] for o in listed]

    found = wait_for(
        lambda: (k := keys()) and len(k) >= at_least and k,
        timeout=timeout,
        what=f"{at_least} events seen by {marker}",
    )
    return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in found]


def test_deploy_reads_functions_and_event_sources(deployed: DeployedStack) -> None:
    assert set(deployed.functions) == {"OnUpload", "OnMessages", "OnEvents", "Sleepy", "Crashy"}
    on_upload = deployed.functions["OnUpload"]
    server_id = deployed.emulated["TransferServer"]
    assert server_id.startswith("s-")
    assert deployed.outputs["ServerId"] == server_id
    assert on_upload.environment["SERVER_ID"] == server_id
    assert on_upload.environment["SEEN_BUCKET"] == "rt-seen-123456789012"
    assert on_upload.handler == "lsvc_handlers.record"
    assert (on_upload.timeout, deployed.functions["Sleepy"].timeout) == (10, 1)
    (note,) = deployed.s3_notifications
    assert (note.function, note.bucket) == ("OnUpload", "rt-seen-123456789012")
    assert note.filter_rules == [{"Name": "prefix", "Value": "inbound/"}]
    (mapping,) = deployed.sqs_mappings
    assert (mapping.function, mapping.batch_size, mapping.report_batch_item_failures) == (
        "OnMessages",
        3,
        True,
    )
    kinds = sorted((r.function, r.schedule or "", r.event_pattern or "") for r in deployed.rules)
    assert kinds == [
        ("OnEvents", "", '{"source": ["test.uploads"]}'),
        ("OnEvents", "rate(1 minute)", ""),
    ]


def test_s3_upload_invokes_the_function_with_a_real_shaped_event(
    deployed: DeployedStack, runtime: LambdaRuntime
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
    bucket = deployed.physical_ids["SeenBucket"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="inbound/acme/a b.csv", Body=b"id\n1\n")
    s3.put_object(Bucket=bucket, Key="elsewhere/not-notified.csv", Body=b"x")
    (got,) = seen(deployed, "s3", at_least=1)
    runtime.wait_idle(30)
    assert len(seen(deployed, "s3", at_least=1)) == 1  # the other prefix is filtered out
    (record,) = got["event"]["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    obj = record["s3"]["object"]
    assert unquote_plus(obj["key"]) == "inbound/acme/a b.csv"
    assert obj["key"] == "inbound/acme/a+b.csv"
    assert obj["size"] == 5
    assert obj["eTag"] == put["ETag"].strip('"')
    assert obj["versionId"] == put["VersionId"]
    assert got["env"] == {
        "MARKER": "s3",
        "AWS_ENDPOINT_URL": deployed.endpoint_url,
        "AWS_REGION": "us-east-1",
    }
    assert got["function_name"] == deployed.functions["OnUpload"].name
    log = (runtime.log_dir / "OnUpload.log").read_text()
    assert "START RequestId:" in log
    assert "REPORT RequestId:" in log


def test_sqs_mapping_batches_deletes_and_redrives(
    deployed: DeployedStack, runtime: LambdaRuntime
) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
    url = deployed.outputs["WorkQueueUrl"]
    for body in ["a", "b", "poison", "c", "d"]:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    runtime.wait_idle(60)
    events = [e["event"] for e in seen(deployed, "sqs", at_least=3)]
    assert all(len(e["Records"]) <= 3 for e in events)
    delivered = sorted(r["body"] for e in events for r in e["Records"])
    assert delivered == ["a", "b", "c", "d", "poison", "poison"]  # maxReceiveCount 2
    dlq = sqs.receive_message(QueueUrl=deployed.outputs["WorkDLQUrl"], MaxNumberOfMessages=10)
    assert [m["Body"] for m in dlq["Messages"]] == ["poison"]


def test_sqs_mapping_runs_batches_concurrently_in_separate_sandboxes(
    deployed: DeployedStack, tmp_path: Path
) -> None:
    rt = LambdaRuntime(deployed, code_root=HERE, log_dir=tmp_path / "logs", max_concurrency=2)
    assert [len(rt.sandboxes[f]) for f in ("OnMessages", "OnUpload")] == [2, 1]
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
    # longer than a slow batch takes, so nothing is delivered twice; set before the pollers
    # start, since a long poll already waiting keeps the queue's old (1 s) visibility
    sqs.set_queue_attributes(
        QueueUrl=deployed.outputs["WorkQueueUrl"], Attributes={"VisibilityTimeout": "60"}
    )
    rt.start()
    try:
        entries = [{"Id": str(i), "MessageBody": f"slow-{i}"} for i in range(6)]
        sqs.send_message_batch(QueueUrl=deployed.outputs["WorkQueueUrl"], Entries=entries)

        def all_six() -> list[Any] | None:
            # every batch's records, not just the first two batches' (under load a third
            # batch may still be running when two have been seen)
            events = seen(deployed, "sqs", at_least=2)
            return events if sum(len(g["event"]["Records"]) for g in events) >= 6 else None

        got = wait_for(all_six, timeout=60, what="all six messages handled")
        rt.wait_idle(60)
    finally:
        rt.stop()
    assert sorted(r["body"] for g in got for r in g["event"]["Records"]) == [
        f"slow-{i}" for i in range(6)
    ]
    assert len({g["pid"] for g in got}) == 2  # two sandboxes, each with its own batch


def test_eventbridge_rule_routes_matching_events_only(
    deployed: DeployedStack, runtime: LambdaRuntime
) -> None:
    events = boto3.client("events", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
    events.put_events(
        Entries=[
            {"Source": "test.uploads", "DetailType": "Upload", "Detail": '{"n": 1}'},
            {"Source": "other.source", "DetailType": "Upload", "Detail": '{"n": 2}'},
        ]
    )
    runtime.wait_idle(30)
    print([g["event"] for g in seen(deployed, "events", at_least=1)])
    (got,) = seen(deployed, "events", at_least=1)
    assert got["event"]["source"] == "test.uploads"
    assert got["event"]["detail"] == {"n": 1}


def test_async_failures_are_retried_then_sent_to_the_on_failure_destination(
    deployed: DeployedStack, tmp_path: Path
) -> None:
    # EventInvokeConfig: MaximumRetryAttempts 1, OnFailure → the EventFailures queue.
    assert deployed.async_configs["OnEvents"].max_retries == 1
    rt = LambdaRuntime(
        deployed, code_root=HERE, log_dir=tmp_path / "logs", async_retry_delays=(1, 1)
    )
    rt.start()
    try:
        events = boto3.client("events", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
        events.put_events(
            Entries=[{"Source": "test.uploads", "DetailType": "U", "Detail": '{"explode": true}'}]
        )
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
        failures = wait_for(
            lambda: sqs.receive_message(
                QueueUrl=deployed.outputs["EventFailuresUrl"], WaitTimeSeconds=1
            ).get("Messages"),
            timeout=30,
            what="the failed event on the on-failure destination",
        )
        rt.wait_idle(30)
    finally:
        rt.stop()
    assert len(seen(deployed, "events", at_least=2)) == 2  # the first try and one retry
    (message,) = failures
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].startswith(deployed.functions["OnEvents"].arn)
    assert record["requestPayload"]["detail"] == {"explode": True}
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "asked to explode"
    assert rt.stats.errors["OnEvents"] == 2


def test_async_failures_without_destination_are_parked_locally(
    deployed: DeployedStack, tmp_path: Path
) -> None:
    rt = LambdaRuntime(
        deployed, code_root=HERE, log_dir=tmp_path / "logs", async_retry_delays=(1, 1)
    )
    rt.start()
    try:
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
        s3.put_object(
            Bucket=deployed.physical_ids["SeenBucket"], Key="inbound/explode.csv", Body=b"x"
        )
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=deployed.endpoint_url)
        parked = wait_for(
            lambda: sqs.receive_message(QueueUrl=rt.failed_events_queue_url, WaitTimeSeconds=1).get(
                "Messages"
            ),
            timeout=30,
            what="the failed event parked locally",
        )
    finally:
        rt.stop()
    assert len(seen(deployed, "s3", at_least=3)) == 3  # Lambda's default: two retries
    record = json.loads(parked[0]["Body"])
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "inbound/explode.csv"


def test_schedule_fires_a_scheduled_event(
    deployed: DeployedStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rate(1 minute) is the shortest EventBridge allows; bring the next fire time forward.
    monkeypatch.setattr(
        runtime_module,
        "next_fire_time",
        lambda expr, after: after + timedelta(seconds=0.5),
    )
    rt = LambdaRuntime(deployed, code_root=HERE, log_dir=tmp_path / "logs")
    rt.start()
    try:
        got = seen(deployed, "events", at_least=2)
    finally:
        rt.stop()
    ticks = [g["event"] for g in got if g["event"].get("detail-type") == "Scheduled Event"]
    assert len(ticks) >= 2
    (rule,) = [r for r in deployed.rules if r.schedule]
    assert ticks[0]["resources"] == [rule.rule_arn]
    assert ticks[0]["source"] == "aws.events"
    assert datetime.strptime(ticks[0]["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_invoke_errors_timeouts_and_crashes(runtime: LambdaRuntime) -> None:
    with pytest.raises(FunctionError, match="asked to explode"):
        runtime.invoke("OnMessages", {"explode": 1})
    with pytest.raises(FunctionTimeoutError, match=r"timed out after 1\.00 seconds"):
        runtime.invoke("Sleepy", {"seconds": 30})
    with pytest.raises(FunctionCrashError, match="exited with code 3"):
        runtime.invoke("Crashy", {})
    # a fresh sandbox after the timeout: the function works again (cold start counted)
    with pytest.raises(FunctionTimeoutError):
        runtime.invoke("Sleepy", {"seconds": 5})
    assert runtime.workers["Sleepy"].cold_starts == 2
    assert runtime.invoke("OnMessages", {"Records": []}) == {"batchItemFailures": []}
