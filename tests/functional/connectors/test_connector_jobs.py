"""Scheduled retrievals: exactly once across overlapping runs, patterns, after-success actions,
CloudWatch / EventBridge records with every AWS field, and the two Lambda handlers."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import asyncssh
import pytest
from connector_fixtures import (
    BUCKET,
    LEDGER,
    Aws,
    SftpServer,
    capture_events,
    drain,
    make_connector,
    start_asyncssh,
)

from connectors.jobfile import load_jobs
from connectors.jobs import JobPorts, RetrievalJob, run_job
from connectors.service import BuiltinConnectorService
from connectors.status import FAILURE_FIELDS, LOG_FIELDS
from connectors.wiring import build_builtin_service
from ingest_local.lambda_service import LambdaContext, load_handler


def _ports(aws: Aws, **kw: Any) -> JobPorts:
    return JobPorts(s3=aws.s3, db=aws.ddb, table=LEDGER, bucket=BUCKET, **kw)


def _versions(aws: Aws, prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in aws.s3.list_object_versions(Bucket=BUCKET, Prefix=prefix).get("Versions", []):
        out[v["Key"]] = out.get(v["Key"], 0) + 1
    return out


def test_overlapping_runs_fetch_each_file_exactly_once(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey
) -> None:
    aws.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    drop = server.root / "outbox"
    drop.mkdir()
    for i in range(23):
        (drop / f"orders-{i:02d}.csv").write_text(f"id\n{i}\n")
    (drop / "README.txt").write_text("not an order file")
    connector = make_connector(aws, server, client_key, max_connections=3)
    job = RetrievalJob(
        name="acme-orders",
        connector_id=connector,
        remote_directory=server.path_of("outbox"),
        pattern="*.csv",
        destination="inbound/acme/orders",
    )
    # two runs at once, as two Lambda containers would be: separate services and connections
    services = [build_builtin_service(aws.target, LEDGER) for _ in range(2)]
    reports: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        reports[i] = run_job(services[i], _ports(aws), job)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert all(r is not None and r.error is None for r in reports), reports
        assert all(r.matched == 23 for r in reports)
        assert sum(r.claimed for r in reports) == 23, [r.to_json() for r in reports]
        assert sum(r.skipped for r in reports) == 23
        assert sum(len(r.completed) for r in reports) == 23
        versions = _versions(aws, "inbound/acme/orders/")
        assert versions == {f"inbound/acme/orders/orders-{i:02d}.csv": 1 for i in range(23)}
        # each call carried at most ten paths
        for r in reports:
            for tid in r.transfer_ids:
                res = services[0].list_file_transfer_results(ConnectorId=connector, TransferId=tid)
                assert 1 <= len(res["FileTransferResults"]) <= 10

        # a later run finds nothing new; a changed file is fetched again, once
        again = run_job(services[0], _ports(aws), job)
        assert (again.claimed, again.skipped) == (0, 23)
        (drop / "orders-05.csv").write_text("id\n5\n6\n")
        changed = run_job(services[1], _ports(aws), job)
        assert changed.completed == [server.path_of("outbox/orders-05.csv")]
        assert _versions(aws, "inbound/acme/orders/orders-05.csv") == {
            "inbound/acme/orders/orders-05.csv": 2
        }
    finally:
        for s in services:
            s.close()


class FlakySFTPServer(asyncssh.SFTPServer):
    """Refuses to open ``locked-*`` files while ``locked`` is set (a partner still writing)."""

    locked: ClassVar[bool] = True

    def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
        if type(self).locked and os.path.basename(path).startswith(b"locked-"):
            raise asyncssh.SFTPPermissionDenied("file is locked")
        return super().open(path, pflags, attrs)


def test_after_success_actions_and_failed_files_retried_next_run(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey
) -> None:
    server_cls = type("Flaky", (FlakySFTPServer,), {"locked": True})
    srv = start_asyncssh(tmp_path, client_key, sftp_class=server_cls)
    (srv.root / "out" / "archive").mkdir(parents=True)
    (srv.root / "del").mkdir()
    for name in ("a.csv", "locked-b.csv"):
        (srv.root / "out" / name).write_text(name)
    (srv.root / "del" / "c.csv").write_text("c")
    connector = make_connector(aws, srv, client_key)
    jobs = load_jobs(
        f"""
retrievals:
  - name: moved
    connector_id: {connector}
    remote_directory: /out
    pattern: "*.csv"
    destination: inbound/acme/orders
    after_success: {{move_to: /out/archive}}
  - name: deleted
    connector_id: {connector}
    remote_directory: /del
    destination: inbound/acme/returns/
    after_success: delete
"""
    )
    service = build_builtin_service(aws.target, LEDGER)
    try:
        first = run_job(service, _ports(aws), jobs[0])
        assert first.completed == ["/out/a.csv"]
        assert first.failed == {"/out/locked-b.csv": "PERMISSION_DENIED"}
        assert sorted(p.name for p in (srv.root / "out").iterdir()) == ["archive", "locked-b.csv"]
        assert (srv.root / "out" / "archive" / "a.csv").read_text() == "a.csv"

        server_cls.locked = False  # the partner finished writing: the next run gets it
        second = run_job(service, _ports(aws), jobs[0])
        assert second.completed == ["/out/locked-b.csv"]
        assert (srv.root / "out" / "archive" / "locked-b.csv").exists()

        deleted = run_job(service, _ports(aws), jobs[1])
        assert deleted.completed == ["/del/c.csv"]
        assert list((srv.root / "del").iterdir()) == []
        keys = sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET)["Contents"])
        assert keys == [
            "inbound/acme/orders/a.csv",
            "inbound/acme/orders/locked-b.csv",
            "inbound/acme/returns/c.csv",
        ]
    finally:
        service.close()
        srv.stop()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retrievals: 3", "top-level 'retrievals:' list"),
        (
            "retrievals:\n  - name: x\n    connector_id: c-1\n    remote_directory: /o\n",
            "destination",
        ),
        (
            "retrievals:\n  - {name: x, connector_id: c-1, remote_directory: /o, destination: "
            "inbound/a/b, after_success: shred}",
            "after_success",
        ),
        (
            "retrievals:\n  - {name: x, connector_id: c-1, remote_directory: /o, "
            "destination: tmp/b}",
            "under inbound/",
        ),
        (
            "retrievals:\n  - {name: x, connector_id: c-1, remote_directory: /o, destination: "
            "inbound/a/b, patern: '*.csv'}",
            "unknown key 'patern'",
        ),
    ],
)
def test_bad_jobs_files_name_the_job_and_field(text: str, message: str) -> None:
    from ingest.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as info:
        load_jobs(text, "s3://b/config/retrievals.yaml")
    assert "s3://b/config/retrievals.yaml" in str(info.value)


#: The detail fields of AWS's "SFTP Connector File …" EventBridge events.
FILE_EVENT_DETAIL_FIELDS = (
    "operation",
    "connector-id",
    "transfer-id",
    "file-transfer-id",
    "url",
    "file-path",
    "status-code",
    "start-timestamp",
    "end-timestamp",
    "local-directory-path",
    "bytes",
)


def _assert_logged_records(
    aws: Aws, server: SftpServer, connector: str, transfer_id: str, paths: list[str]
) -> None:
    """CloudWatch Logs: one JSON event per file, with every field of AWS's connector logs."""
    group = f"/aws/transfer/{connector}"
    logged = [
        json.loads(e["message"]) for e in aws.logs.filter_log_events(logGroupName=group)["events"]
    ]
    assert sorted(e["file-path"] for e in logged) == sorted(paths)
    for entry in logged:
        for name in (*LOG_FIELDS, "local-directory-path"):
            assert entry.get(name) not in (None, ""), (name, entry)
        assert entry["transfer-id"] == transfer_id
        assert entry["connector-id"] == connector
        assert entry["operation"] == "RETRIEVE"
        assert entry["url"] == server.url
    failed = next(e for e in logged if e["status-code"] == "FAILED")
    assert failed["failure-code"] == "RETRIEVE_FILE_NOT_FOUND"
    assert all(failed.get(f) for f in FAILURE_FIELDS)
    done = next(e for e in logged if e["status-code"] == "COMPLETED")
    assert done["bytes"] == 5 and "failure-code" not in done


def _completed_event(aws: Aws, queue_url: str) -> dict[str, Any]:
    """EventBridge: AWS's detail-types and detail fields; the event of the completed file."""
    events = drain(aws, queue_url)
    assert sorted(e["detail-type"] for e in events) == [
        "SFTP Connector File Retrieve Completed",
        "SFTP Connector File Retrieve Failed",
    ]
    for e in events:
        detail = e["detail"]
        for name in FILE_EVENT_DETAIL_FIELDS:
            assert name in detail, (name, detail)
    completed = next(e for e in events if e["detail"]["status-code"] == "COMPLETED")
    assert completed["detail"]["local-file-location"] == {
        "domain": "S3",
        "bucket": BUCKET,
        "key": "inbound/x/ok.csv",
    }
    return completed


def test_status_records_carry_every_aws_field_and_feed_the_status_function(
    aws: Aws,
    server: SftpServer,
    client_key: asyncssh.SSHKey,
    service: BuiltinConnectorService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue_url = capture_events(aws, "SFTP Connector File ")
    (server.root / "ok.csv").write_text("id\n1\n")
    connector = make_connector(aws, server, client_key)
    paths = [server.path_of("ok.csv"), server.path_of("gone.csv")]
    transfer_id = service.start_file_transfer(
        ConnectorId=connector, RetrieveFilePaths=paths, LocalDirectoryPath=f"/{BUCKET}/inbound/x"
    )["TransferId"]

    _assert_logged_records(aws, server, connector, transfer_id, paths)
    completed = _completed_event(aws, queue_url)

    # the transfer-status function consumes the real event into the ledger
    for name, value in {
        "LANDING_BUCKET": BUCKET,
        "LEDGER_TABLE": LEDGER,
        "CONNECTOR_ENGINE": "local",
        "POWERTOOLS_SERVICE_NAME": "transfer-status",
    }.items():
        monkeypatch.setenv(name, value)
    handler = load_handler("lambdas.transfer_status.handler")
    file_key = {"pk": {"S": f"TRANSFER#{transfer_id}"}, "sk": {"S": f"FILE#{paths[0]}"}}
    aws.ddb.delete_item(TableName=LEDGER, Key=file_key)
    out = handler(completed, LambdaContext(function_name="TransferStatusFunction"))
    assert out["status-code"] == "COMPLETED" and out["settled"] is False  # a manual transfer
    item = aws.ddb.get_item(TableName=LEDGER, Key=file_key)["Item"]
    assert item["status"]["S"] == "COMPLETED" and item["connector_id"]["S"] == connector


def test_retrieve_function_runs_the_jobs_file(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    (server.root / "out").mkdir()
    (server.root / "out" / "a.csv").write_text("id\n1\n")
    connector = make_connector(aws, server, client_key)
    aws.s3.put_object(
        Bucket=BUCKET,
        Key="config/retrievals.yaml",
        Body=(
            "retrievals:\n"
            f"  - {{name: acme, connector_id: {connector}, remote_directory: "
            f"'{server.path_of('out')}', destination: inbound/acme/orders}}\n"
        ).encode(),
    )
    for name, value in {
        "LANDING_BUCKET": BUCKET,
        "LEDGER_TABLE": LEDGER,
        "CONNECTOR_ENGINE": "local",
        "POWERTOOLS_SERVICE_NAME": "retrieve",
    }.items():
        monkeypatch.setenv(name, value)
    handler = load_handler("lambdas.retrieve.handler")
    scheduled = {
        "version": "0",
        "id": "x",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/retrieve"],
        "detail": {},
    }
    out = handler(scheduled, LambdaContext(function_name="RetrieveFunction"))
    assert out["jobs"][0]["completed"] == [server.path_of("out/a.csv")]
    assert aws.s3.get_object(Bucket=BUCKET, Key="inbound/acme/orders/a.csv")["Body"].read() == (
        b"id\n1\n"
    )
    again = handler(scheduled, LambdaContext(function_name="RetrieveFunction"))
    assert again["jobs"][0]["completed"] == [] and again["jobs"][0]["skipped"] == 1


class GoneConnector:
    """The real service, except that one connector is gone on the managed side: its calls
    fail with the ClientError boto3's transfer client raises (not an IngestError)."""

    def __init__(self, service: BuiltinConnectorService, gone: str) -> None:
        self._service = service
        self._gone = gone

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._service, name)

        def call(**kwargs: Any) -> Any:
            if kwargs.get("ConnectorId") == self._gone:
                from botocore.exceptions import ClientError

                raise ClientError(
                    {"Error": {"Code": "ResourceNotFoundException", "Message": "no connector"}},
                    name,
                )
            return real(**kwargs)

        return call


def test_one_jobs_sdk_error_does_not_stop_the_jobs_after_it(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey
) -> None:
    from connectors.jobs import run_jobs

    drop = server.root / "later"
    drop.mkdir()
    (drop / "a.csv").write_text("id\n1\n")
    connector = make_connector(aws, server, client_key)
    jobs = [
        RetrievalJob(
            name="gone",
            connector_id="c-00000000000000000",
            remote_directory=server.path_of("later"),
            pattern="*.csv",
            destination="inbound/gone/orders",
        ),
        RetrievalJob(
            name="fine",
            connector_id=connector,
            remote_directory=server.path_of("later"),
            pattern="*.csv",
            destination="inbound/fine/orders",
        ),
    ]
    service = build_builtin_service(aws.target, LEDGER)
    try:
        reports = run_jobs(GoneConnector(service, "c-00000000000000000"), _ports(aws), jobs)
    finally:
        service.close()
    assert [r.job for r in reports] == ["gone", "fine"]
    assert reports[0].error and "ResourceNotFoundException" in reports[0].error
    assert reports[1].error is None
    assert reports[1].completed == [server.path_of("later") + "/a.csv"]


class ResultsLater:
    """The real service, whose results the run does not see in time: the run leaves its files
    to the transfer-status function (as when a managed transfer outlasts the run's wait)."""

    def __init__(self, service: BuiltinConnectorService) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    def list_file_transfer_results(self, **kwargs: Any) -> dict[str, Any]:
        return {"FileTransferResults": []}


def _claim_of(aws: Aws, connector: str, path: str) -> dict[str, Any]:
    items = aws.ddb.query(
        TableName=LEDGER,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"REMOTE#{connector}#{path}"}},
        ConsistentRead=True,
    )["Items"]
    assert len(items) == 1, items
    return dict(items[0])


def _pending_markers(aws: Aws, connector: str, job: str) -> list[dict[str, Any]]:
    return list(
        aws.ddb.query(
            TableName=LEDGER,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"PENDING-ACTION#{connector}#{job}"}},
            ConsistentRead=True,
        )["Items"]
    )


def test_status_function_leaves_builtin_actions_pending_for_the_next_run(
    aws: Aws,
    server: SftpServer,
    client_key: asyncssh.SSHKey,
    service: BuiltinConnectorService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Builtin engine: the transfer-status function (no SFTP engine in its package) settles the
    claims from the events and leaves their after-success actions pending; the job's next run
    performs each once (a failing one is noted as action_error), and the run after that does
    not repeat them."""
    from ingest.shared.polling import poll_until
    from lambdas import transfer_status

    queue_url = capture_events(aws, "SFTP Connector File ")
    for d in ("out/archive", "del"):
        (server.root / d).mkdir(parents=True)
    (server.root / "out" / "a.csv").write_text("a")
    (server.root / "del" / "c.csv").write_text("c")
    connector = make_connector(aws, server, client_key)
    jobs = load_jobs(
        f"""
retrievals:
  - name: moved
    connector_id: {connector}
    remote_directory: '{server.path_of("out")}'
    pattern: "*.csv"
    destination: inbound/acme/orders
    after_success: {{move_to: '{server.path_of("out/archive")}'}}
  - name: broken
    connector_id: {connector}
    remote_directory: '{server.path_of("del")}'
    destination: inbound/acme/returns
    after_success: {{move_to: '{server.path_of("no/such/dir")}'}}
"""
    )
    a_path, c_path = server.path_of("out/a.csv"), server.path_of("del/c.csv")
    ports = _ports(aws, wait_seconds=0.2, poll_seconds=0.1)
    first = [run_job(ResultsLater(service), ports, job) for job in jobs]
    assert [(r.pending, r.completed, r.actions) for r in first] == [
        ([a_path], [], []),
        ([c_path], [], []),
    ]

    # the transfer-status function, builtin mode, settles both from their events
    for name, value in {
        "LANDING_BUCKET": BUCKET,
        "LEDGER_TABLE": LEDGER,
        "CONNECTOR_ENGINE": "builtin",
        "POWERTOOLS_SERVICE_NAME": "transfer-status",
    }.items():
        monkeypatch.setenv(name, value)
    transfer_status.wiring.reset()
    try:
        got: list[dict[str, Any]] = []

        def both() -> list[dict[str, Any]] | None:
            got.extend(drain(aws, queue_url))
            return got if len(got) >= 2 else None

        events = poll_until(both, timeout=60, interval=0.2, what="two connector file events")
        assert transfer_status.wiring().ports.api is None  # no connector engine at all
        context = LambdaContext(function_name="TransferStatusFunction")
        outs = [transfer_status.handler(e, context) for e in events]
        assert [o["settled"] for o in outs] == [True, True]
        # the same event delivered again changes nothing
        assert transfer_status.handler(events[0], context)["settled"] is False
    finally:
        transfer_status.wiring.reset()
    for path in (a_path, c_path):
        claim = _claim_of(aws, connector, path)
        assert claim["status"]["S"] == "FETCHED" and claim["action_pending"]["S"] == "move"
    assert (server.root / "out" / "a.csv").exists()  # nothing done on the server yet
    assert [len(_pending_markers(aws, connector, j.name)) for j in jobs] == [1, 1]

    # the next run of each job performs its pending action first, once
    second = [run_job(service, _ports(aws), job) for job in jobs]
    assert [(r.actions, r.claimed, r.error) for r in second] == [
        ([a_path], 0, None),
        ([c_path], 0, None),
    ]
    assert not (server.root / "out" / "a.csv").exists()
    assert (server.root / "out" / "archive" / "a.csv").read_text() == "a"
    moved = _claim_of(aws, connector, a_path)
    assert "action_pending" not in moved and "action_error" not in moved
    assert moved["action_taken_at"]
    broken = _claim_of(aws, connector, c_path)
    assert "action_pending" not in broken and broken["action_error"]["S"]
    assert (server.root / "del" / "c.csv").exists()  # the failed move left it in place
    assert [_pending_markers(aws, connector, j.name) for j in jobs] == [[], []]

    # the run after that repeats neither action, and fetches nothing again
    third = [run_job(service, _ports(aws), job) for job in jobs]
    assert [(r.actions, r.claimed) for r in third] == [([], 0), ([], 0)]
    assert sorted(p.name for p in (server.root / "out" / "archive").iterdir()) == ["a.csv"]
    assert _claim_of(aws, connector, a_path)["action_taken_at"] == moved["action_taken_at"]
