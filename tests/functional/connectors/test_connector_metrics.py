"""The EMF metrics of the retrieve and transfer-status functions, invoked as Lambda invokes them
on moto against a real SFTP server: totals with ``service``, per-connector copies with
``service`` and ``ConnectorId``, and exactly the rows of docs/operations.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from support_emf import (
    assert_emitted_as_documented,
    assert_json_logs_with_context,
    emf_points,
    totals,
    use_function_settings,
)

from connectors.service import BuiltinConnectorService
from ingest_local.lambda_service import LambdaContext

SCHEDULED = {
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


@pytest.fixture
def sftp(tmp_path: Path, client_key: asyncssh.SSHKey) -> Iterator[SftpServer]:
    srv = start_asyncssh(tmp_path / "asyncssh", client_key)
    yield srv
    srv.stop()


@pytest.fixture
def functions(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The two handler modules, wired afresh for this test's moto."""
    from lambdas import retrieve, transfer_status

    for name, value in {
        "LANDING_BUCKET": BUCKET,
        "LEDGER_TABLE": LEDGER,
        "CONNECTOR_ENGINE": "builtin",
    }.items():
        monkeypatch.setenv(name, value)
    modules = {"retrieve": retrieve, "transfer-status": transfer_status}
    for module in modules.values():
        module.wiring.reset()
    yield modules
    for module in modules.values():
        module.wiring.reset()


def test_connector_metrics_in_all_and_by_connector(
    *,
    aws: Aws,
    sftp: SftpServer,
    client_key: asyncssh.SSHKey,
    service: BuiltinConnectorService,
    functions: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    retrieve, transfer_status = functions["retrieve"], functions["transfer-status"]
    (sftp.root / "out").mkdir()
    for name in ("a.csv", "b.csv"):
        (sftp.root / "out" / name).write_text("id\n1\n")
    good = make_connector(aws, sftp, client_key)
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    mistrusted = make_connector(aws, sftp, client_key, trusted=[stranger])  # host key mismatch
    out = sftp.path_of("out")
    aws.s3.put_object(
        Bucket=BUCKET,
        Key="config/retrievals.yaml",
        Body=(
            "retrievals:\n"
            f"  - {{name: good, connector_id: {good}, remote_directory: '{out}', "
            "pattern: '*.csv', destination: inbound/acme/orders}\n"
            f"  - {{name: mistrusted, connector_id: {mistrusted}, remote_directory: '{out}', "
            "destination: inbound/other/orders}\n"
        ).encode(),
    )
    events = capture_events(aws, "SFTP Connector File ")

    # retrieve: two files started on one connector, one job that could not list
    retrieve_service = use_function_settings(monkeypatch, retrieve, "lambdas.retrieve.handler")
    capsys.readouterr()
    result = retrieve.handler(SCHEDULED, LambdaContext(function_name="RetrieveFunction"))
    out = capsys.readouterr().out
    assert_json_logs_with_context(out, "RetrieveFunction")
    points = emf_points(out)
    jobs = {j["job"]: j for j in result["jobs"]}
    assert len(jobs["good"]["completed"]) == 2 and jobs["good"]["error"] is None
    assert jobs["mistrusted"]["error"]
    assert totals(points, service=retrieve_service) == {
        "TransfersStarted": 2,
        "RetrievalsFailed": 1,
    }
    assert totals(points, service=retrieve_service, ConnectorId=good) == {
        "TransfersStarted": 2,
        "RetrievalsFailed": 0,
    }
    assert totals(points, service=retrieve_service, ConnectorId=mistrusted) == {
        "TransfersStarted": 0,
        "RetrievalsFailed": 1,
    }
    assert_emitted_as_documented(points, retrieve_service)

    # a file that fails, from a transfer started by hand
    service.start_file_transfer(
        ConnectorId=good,
        RetrieveFilePaths=[sftp.path_of("out/gone.csv")],
        LocalDirectoryPath=f"/{BUCKET}/inbound/acme/orders",
    )

    # transfer-status: each connector file event once, in all and by its connector
    status_service = use_function_settings(
        monkeypatch, transfer_status, "lambdas.transfer_status.handler"
    )
    delivered = _events(aws, events, 3)
    capsys.readouterr()
    for event in delivered:
        transfer_status.handler(event, LambdaContext(function_name="TransferStatusFunction"))
    out = capsys.readouterr().out
    assert_json_logs_with_context(out, "TransferStatusFunction")
    points = emf_points(out)
    assert totals(points, service=status_service) == {"TransfersCompleted": 2, "TransfersFailed": 1}
    assert totals(points, service=status_service, ConnectorId=good) == {
        "TransfersCompleted": 2,
        "TransfersFailed": 1,
    }
    assert_emitted_as_documented(points, status_service)


def _events(aws: Aws, queue_url: str, count: int) -> list[dict[str, Any]]:
    """The connector's file events (they are put as each file ends, so poll for them)."""
    from ingest.shared.polling import poll_until

    got: list[dict[str, Any]] = []

    def enough() -> list[dict[str, Any]] | None:
        got.extend(drain(aws, queue_url))
        return got if len(got) >= count else None

    poll_until(enough, timeout=60, interval=0.2, what=f"{count} connector file events")
    assert len(got) == count, [e["detail-type"] for e in got]
    return got
