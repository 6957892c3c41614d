"""The EMF metrics of fanout, processor and upload-events, invoked as Lambda invokes them on
moto: names, values, units, the namespace and the ``service`` dimension of template.yaml, and
exactly the rows of docs/operations.md ("Metrics and logs"). Also: each handler's Metrics,
Tracer and Logger take their settings from the function's environment, and the doc's table
covers every function of the template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from support_deliveries import build_zip
from support_emf import (
    BY_CONNECTOR,
    ROOT,
    assert_emitted_as_documented,
    assert_json_logs_with_context,
    doc_rows,
    emf_points,
    template_functions,
    totals,
    use_function_settings,
)

from ingest.domain.files import FileStatus
from ingest.errors import StorageUnavailableError
from ingest.shared.polling import poll_until
from ingest.usecases.fanout import Outcome
from ingest_local.lambda_service import LambdaContext, s3_object_created_event, sqs_event

#: the ``pipeline`` fixture of tests/functional/core/conftest.py, its bucket and region
Pipeline = Any
BUCKET = "test-landing-123456789012"
REGION = "us-east-1"
ROLE_ID = "AROAEXAMPLETRANSFER1"
SERVER_ID = "s-0123456789abcdef0"
ORDERS = b"order_id,amount,quantity\n" + b"".join(b"o%d,%d.5,%d\n" % (i, i, i) for i in range(40))


def _record(p: Pipeline, key: str, data: bytes, **extra: Any) -> dict[str, Any]:
    assert p.bucket == BUCKET
    put = p.put(key, data)
    event = s3_object_created_event(
        BUCKET, key, size=len(data), etag=put["ETag"], version_id=put.get("VersionId"), **extra
    )
    record: dict[str, Any] = event["Records"][0]
    return record


def _invoke_processor(p: Pipeline, bodies: list[str] | None = None) -> dict[str, Any]:
    """One processor invocation with the messages the queue holds (one batch, as Lambda);
    their bodies are added to ``bodies``."""
    from lambdas import processor

    got = p.sqs.receive_message(
        QueueUrl=p.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    ).get("Messages", [])
    assert got, "nothing queued"
    if bodies is not None:
        bodies.extend(m["Body"] for m in got)
    event = sqs_event(got, p.queue_arn, REGION)
    response = processor.handler(event, LambdaContext(function_name="ProcessorFunction"))
    # as the event source mapping does: the messages not reported failed are deleted
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for m in got:
        if m["MessageId"] not in failed:
            p.sqs.delete_message(QueueUrl=p.queue_url, ReceiptHandle=m["ReceiptHandle"])
    return dict(response)


def test_fanout_metrics_count_every_outcome(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas import fanout

    pipeline.setenv("CHUNK_SIZE_BYTES", "200")  # ORDERS (475 bytes) is a few chunks
    pipeline.setenv("TRANSFER_ROLE_ID", ROLE_ID)
    service = use_function_settings(monkeypatch, fanout, "lambdas.fanout.handler")
    queued = _record(pipeline, "inbound/acme/orders/day1.csv", ORDERS)
    event = {
        "Records": [
            queued,
            dict(queued),  # S3 delivers at least once: the same event again
            _record(pipeline, "inbound/acme/nowhere/x.csv", b"a\n"),
            _record(pipeline, "inbound/acme/orders/day2.csv.part", b"order_id\n"),
            _record(
                pipeline,
                "inbound/acme/orders/day3.csv",
                ORDERS,
                principal_id=f"AWS:{ROLE_ID}:acme-session",
            ),
            # envelopes: an archive expanded next to itself, and one refused (zip slip)
            _record(pipeline, "inbound/acme/orders/batch.zip", build_zip({"a.csv": ORDERS})),
            _record(pipeline, "inbound/acme/orders/slip.zip", build_zip({"../x.csv": ORDERS})),
        ]
    }
    capsys.readouterr()
    result = pipeline.fanout(event)
    out = capsys.readouterr().out
    assert [f["outcome"] for f in result["files"]] == [
        Outcome.QUEUED,
        Outcome.DUPLICATE,
        Outcome.UNMATCHED,
        Outcome.IGNORED,
        Outcome.HELD,
        Outcome.EXPANDED,
        Outcome.FAILED,
    ]
    assert pipeline.file("inbound/acme/orders/slip.zip").status == "FAILED"
    chunks = result["files"][0]["chunks"]
    assert chunks > 1
    assert_json_logs_with_context(out, "FanoutFunction")
    points = emf_points(out)
    assert totals(points, service=service) == {
        "FilesReceived": 7,
        "FilesQueued": 1,
        "FilesDuplicate": 1,
        "FilesUnmatched": 1,
        "FilesHeld": 1,
        "FilesWaiting": 0,
        "FilesExpanded": 1,
        "FilesDecrypted": 0,
        "FilesRefused": 1,
        "FilesFailed": 0,
        "ChunksQueued": chunks,
    }
    assert pipeline.queue_depth() == chunks  # ChunksQueued is what the queue got
    assert_emitted_as_documented(points, service)

    # an object fanout cannot handle fails the invocation, and says so first
    class Down:
        def __init__(self, queue: Any) -> None:
            self._queue = queue

        def send_all(self, bodies: Any) -> None:
            raise StorageUnavailableError("sqs", "SendMessageBatch", "the queue is down")

    pipeline.wire_fanout(queue=Down)
    failing = {"Records": [_record(pipeline, "inbound/acme/orders/day4.csv", ORDERS)]}
    with pytest.raises(StorageUnavailableError):
        pipeline.fanout(failing)
    points = emf_points(capsys.readouterr().out)
    assert totals(points, service=service) == {
        "FilesReceived": 1,
        "FilesQueued": 0,
        "FilesDuplicate": 0,
        "FilesUnmatched": 0,
        "FilesHeld": 0,
        "FilesWaiting": 0,
        "FilesExpanded": 0,
        "FilesDecrypted": 0,
        "FilesRefused": 0,
        "FilesFailed": 1,
        "ChunksQueued": 0,
    }


def test_every_fanout_outcome_has_a_decided_metric() -> None:
    from lambdas import fanout

    assert set(fanout.OUTCOME_METRICS) == set(Outcome)
    documented = {name for name, _, _ in doc_rows()["fanout"]}
    assert {m for m in fanout.OUTCOME_METRICS.values() if m} <= documented
    assert set(fanout.METRICS) == documented


def test_processor_metrics_count_rows_chunks_and_files(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas import processor

    pipeline.setenv("CHUNK_SIZE_BYTES", "256")
    service = use_function_settings(monkeypatch, processor, "lambdas.processor.handler")
    rows = ORDERS + b"o-bad,not-a-number,1\n" + b"o-bad2,1.0,x\n"
    pipeline.land("inbound/acme/orders/rows.csv", rows)
    capsys.readouterr()
    bodies: list[str] = []
    response = _invoke_processor(pipeline, bodies)
    assert response == {"batchItemFailures": []}
    entry = pipeline.file("inbound/acme/orders/rows.csv")
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == (
        FileStatus.PROCESSED_WITH_REJECTS,
        40,
        2,
    )
    out = capsys.readouterr().out
    assert_json_logs_with_context(out, "ProcessorFunction")
    points = emf_points(out)
    got = totals(points, service=service)
    durations = [v for p in points if p.name == "ChunkDuration" for v in p.values]
    assert len(durations) == entry.chunks > 1  # one per chunk
    assert all(d > 0 for d in durations)
    assert {p.unit for p in points if p.name == "ChunkDuration"} == {"Milliseconds"}
    del got["ChunkDuration"]
    assert got == {
        "RowsWritten": 40,
        "RowsRejected": 2,
        "ChunksSucceeded": entry.chunks,
        "ChunksFailed": 0,
        "FilesProcessed": 1,
        "FilesFailed": 0,
    }
    assert_emitted_as_documented(points, service)

    # the same chunks delivered again: their rows are written again, the file is not
    # processed again
    for body in bodies:
        pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=body)
    capsys.readouterr()
    assert _invoke_processor(pipeline) == {"batchItemFailures": []}
    got = totals(emf_points(capsys.readouterr().out), service=service)
    del got["ChunkDuration"]
    assert got == {
        "RowsWritten": 40,
        "RowsRejected": 2,
        "ChunksSucceeded": entry.chunks,
        "ChunksFailed": 0,
        "FilesProcessed": 0,
        "FilesFailed": 0,
    }
    again = pipeline.file(entry.key)
    assert (again.status, again.rows_ok, again.rows_rejected, again.chunks_done) == (
        entry.status,
        entry.rows_ok,
        entry.rows_rejected,
        entry.chunks_done,
    )
    assert pipeline.count_items() == 40

    # a permanent error turns the file FAILED at its first delivery: counted once
    pipeline.setenv("CHUNK_SIZE_BYTES", "1048576")
    pipeline.land("inbound/acme/orders/broken.csv.gz", b"\x1f\x8b\x08\x00not gzip at all" * 4)
    capsys.readouterr()
    with pytest.raises(BatchProcessingError):  # the whole batch failed
        _invoke_processor(pipeline)
    assert pipeline.file("inbound/acme/orders/broken.csv.gz").status == FileStatus.FAILED
    got = totals(emf_points(capsys.readouterr().out), service=service)
    assert got.pop("ChunkDuration") > 0
    assert got == {
        "RowsWritten": 0,
        "RowsRejected": 0,
        "ChunksSucceeded": 0,
        "ChunksFailed": 1,
        "FilesProcessed": 0,
        "FilesFailed": 1,
    }
    # its next delivery (the queue's 1 s visibility timeout) fails again: the file already was
    _wait_visible(pipeline)
    capsys.readouterr()
    with pytest.raises(BatchProcessingError):
        _invoke_processor(pipeline)
    got = totals(emf_points(capsys.readouterr().out), service=service)
    assert (got["ChunksFailed"], got["FilesFailed"], got["ChunksSucceeded"]) == (1, 0, 0)


def _wait_visible(p: Pipeline) -> None:
    """Until a failed message is visible again (its visibility timeout)."""

    def visible() -> bool | None:
        attrs = p.sqs.get_queue_attributes(
            QueueUrl=p.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) > 0 or None

    poll_until(visible, timeout=30, interval=0.2, what="the failed chunk's redelivery")


def _transfer_event(kind: str, key: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6b5f1a4e-0000-4000-8000-000000000000",
        "detail-type": f"SFTP Server File {kind}",
        "source": "aws.transfer",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:transfer:{REGION}:123456789012:server/{SERVER_ID}"],
        "detail": {
            "status-code": "FAILED" if kind.endswith("Failed") else "COMPLETED",
            "protocol": "SFTP",
            "file-path": f"/{BUCKET}/{key}",
            "server-id": SERVER_ID,
            "username": "acme",
            **detail,
        },
    }


def test_upload_events_metrics_count_completed_and_partial_uploads(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas import upload_events

    pipeline.setenv("TRANSFER_ROLE_ID", ROLE_ID)
    service = use_function_settings(monkeypatch, upload_events, "lambdas.upload_events.handler")
    principal = f"AWS:{ROLE_ID}:acme-session"

    def invoke(event: dict[str, Any]) -> dict[str, float]:
        capsys.readouterr()
        upload_events.handler(event, LambdaContext(function_name="UploadEventsFunction"))
        out = capsys.readouterr().out
        assert_json_logs_with_context(out, "UploadEventsFunction")
        points = emf_points(out)
        assert_emitted_as_documented(points, service)
        return totals(points, service=service)

    done = "inbound/acme/orders/done.csv"
    put = pipeline.put(done, ORDERS)
    pipeline.notify(done, size=len(ORDERS), etag=put["ETag"], version=None, principal_id=principal)
    completed = _transfer_event(
        "Upload Completed", done, bytes=len(ORDERS), etag=put["ETag"].strip('"')
    )
    assert invoke(completed) == {"GatewayUploadsCompleted": 1, "GatewayUploadsPartial": 0}
    assert pipeline.file(done).status == FileStatus.QUEUED

    cut = "inbound/acme/orders/cut.csv"
    put = pipeline.put(cut, ORDERS[:100])
    pipeline.notify(cut, size=100, etag=put["ETag"], version=None, principal_id=principal)
    failed = _transfer_event(
        "Upload Failed", cut, bytes=100, **{"failure-code": "CONNECTION_CLOSED"}
    )
    assert invoke(failed) == {"GatewayUploadsCompleted": 0, "GatewayUploadsPartial": 1}
    assert pipeline.file(cut).status == FileStatus.PARTIAL

    # a rename moves an upload its own event already counted
    renamed = "inbound/acme/orders/renamed.csv"
    pipeline.s3.copy_object(Bucket=BUCKET, Key=renamed, CopySource={"Bucket": BUCKET, "Key": done})
    rename = _transfer_event(
        "Rename Completed",
        renamed,
        **{"original-file-path": f"/{BUCKET}/{done}", "renamed-file-path": f"/{BUCKET}/{renamed}"},
    )
    assert invoke(rename) == {"GatewayUploadsCompleted": 0, "GatewayUploadsPartial": 0}


def test_handler_metrics_settings_come_from_the_functions_environment() -> None:
    """In a fresh interpreter, each handler imported under its function's template settings
    reports that service and namespace in its Metrics, Tracer and Logger."""
    functions = template_functions()
    assert {f["handler"] for f in functions.values()} == {
        f"lambdas.{m}.handler"
        for m in (
            "fanout",
            "processor",
            "retrieve",
            "transfer_status",
            "expected_files",
            "upload_events",
            "wait_sweep",
            "outcomes",
        )
    }
    script = (
        "import importlib, json, os, sys\n"
        "out = {}\n"
        "for handler, service, namespace in json.loads(sys.argv[1]):\n"
        "    os.environ['POWERTOOLS_SERVICE_NAME'] = service\n"
        "    os.environ['POWERTOOLS_METRICS_NAMESPACE'] = namespace\n"
        "    module = importlib.import_module(handler.rpartition('.')[0])\n"
        "    out[handler] = [module.metrics.service, module.metrics.namespace,\n"
        "                    module.tracer.service, module.logger.service]\n"
        "print(json.dumps(out))\n"
    )
    args = [(f["handler"], f["service"], f["namespace"]) for f in functions.values()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got == {h: [s, n, s, s] for h, s, n in args}
    assert {n for _, _, n in args} == {"sftp-ingest"}


def test_the_metrics_table_covers_every_function_and_only_them() -> None:
    services = {f["service"] for f in template_functions().values()}
    rows = doc_rows()
    assert set(rows) == services
    by_connector = {
        name
        for function in ("retrieve", "transfer-status")
        for name, _, d in rows[function]
        if d == BY_CONNECTOR
    }
    assert by_connector == {
        "TransfersStarted",
        "RetrievalsFailed",
        "TransfersCompleted",
        "TransfersFailed",
    }
    for function, function_rows in rows.items():
        for name, unit, _ in function_rows:
            assert unit in {"Count", "Milliseconds"}, (function, name, unit)
