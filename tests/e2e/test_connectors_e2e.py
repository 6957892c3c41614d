"""Scheduled retrievals on the whole local stack: ``ingest up``, a partner's OpenSSH sshd, the
connector created with the CLI, the RetrieveFunction run as the stack runs it, and the pulled
file ingested by the S3 trigger like an upload; in both connector modes: ``builtin`` (our
engine inside the function) and ``managed`` (the function calls the Transfer API, which the
local stack serves asynchronously, as AWS does)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from stack_kit import RunningStack
from support_aws import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional" / "connectors"))
from connector_fixtures import SftpServer, start_sshd

REPO = Path(__file__).resolve().parents[2]
ORDERS = REPO / "fixtures" / "files" / "orders" / "orders-2026-11-01.csv"
PULLED = "inbound/pullpartner/orders/pulled-orders.csv"

pytestmark = pytest.mark.slow


def _create_connector(local_stack: RunningStack, srv: SftpServer, key_file: Path) -> str:
    """``ingest connectors create`` against the stack, trusting the sshd's fingerprint."""
    fingerprint = str(srv.host_keys[0].get_fingerprint("sha256"))
    created = local_stack.ingest(
        "connectors", "create", "--url", srv.url, "--user", "root",
        "--private-key", str(key_file), "--trusted-host-key", fingerprint,
    )  # fmt: skip
    return created.stdout.strip()


def _put_jobs_file(
    local_stack: RunningStack, connector: str, outbox: Path, srv: SftpServer
) -> None:
    """The retrievals file: pull ``*.csv`` from the outbox, then move them to the root."""
    jobs = (
        "retrievals:\n"
        f"  - name: pull-orders\n"
        f"    connector_id: {connector}\n"
        f"    remote_directory: {outbox}\n"
        f"    pattern: '*.csv'\n"
        f"    destination: inbound/pullpartner/orders\n"
        f"    after_success: {{move_to: {srv.root}}}\n"
    )
    local_stack.client("s3").put_object(
        Bucket=local_stack.resources["bucket"], Key="config/retrievals.yaml", Body=jobs.encode()
    )


def _schedule_event(path: Path) -> Path:
    """The EventBridge Scheduled Event that runs the RetrieveFunction, written to ``path``."""
    path.write_text(
        json.dumps(
            {
                "version": "0",
                "id": "e2e",
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",
                "time": "2026-11-23T08:00:00Z",
                "region": "us-east-1",
                "resources": [],
                "detail": {},
            }
        )
    )
    return path


def _wait_for_status_function(local_stack: RunningStack) -> None:
    """The engine's EventBridge event reached TransferStatusFunction through the rule."""
    status_log = local_stack.state_dir / "logs" / "TransferStatusFunction.log"

    def consumed() -> bool:
        text = status_log.read_text() if status_log.exists() else ""
        return "pulled-orders.csv" in text and "COMPLETED" in text

    wait_for(consumed, timeout=60, what="TransferStatusFunction to consume the event")


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects among a function log's lines."""
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                out.append(value)
    return out


def _assert_transfer_recorded(
    stack: RunningStack, connector: str, transfer_id: str, outbox: Path
) -> None:
    """The transfer's status is in the ledger, and ``ingest status KEY`` names the transfer."""
    results = json.loads(
        stack.ingest("connectors", "results", connector, transfer_id, "--json").stdout
    )
    assert results == [
        {
            "FilePath": str(outbox / "pulled-orders.csv"),
            "StatusCode": "COMPLETED",
            "FailureCode": None,
            "FailureMessage": None,
        }
    ]
    story = json.loads(stack.ingest("status", PULLED, "--json").stdout)
    (source,) = [s for s in story["source"] if s["transfer_id"] == transfer_id]
    assert source["connector_id"] == connector
    assert source["remote_path"] == str(outbox / "pulled-orders.csv")
    assert source["completed_at"]
    table = stack.ingest("status", PULLED).stdout
    assert f"Source: connector {connector}, transfer {transfer_id}" in table


def test_scheduled_retrieval_lands_and_is_ingested(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_partner"
    key_file.write_bytes(key.export_private_key())
    srv = start_sshd(tmp_path / "partner", key)
    try:
        outbox = srv.root / "outbox"
        outbox.mkdir()
        shutil.copy(ORDERS, outbox / "pulled-orders.csv")
        (outbox / "notes.txt").write_text("not matched by the job's pattern")

        connector = _create_connector(local_stack, srv, key_file)
        _put_jobs_file(local_stack, connector, outbox, srv)
        event = _schedule_event(tmp_path / "schedule.json")
        run = local_stack.ingest("invoke", "RetrieveFunction", "-e", str(event), timeout=300)
        (report,) = json.loads(run.stdout)["jobs"]
        assert report["completed"] == [str(outbox / "pulled-orders.csv")], report
        assert (report["matched"], report["listed"]) == (1, 2)
        (transfer_id,) = report["transfer_ids"]

        entry = local_stack.wait_for_file(PULLED)
        assert entry["status"] == "PROCESSED", entry
        assert entry["rows_ok"] == len(ORDERS.read_text().splitlines()) - 1
        _wait_for_status_function(local_stack)
        _assert_transfer_recorded(local_stack, connector, transfer_id, outbox)

        # moved out of the outbox after success; the unmatched file stays
        assert sorted(p.name for p in outbox.iterdir()) == ["notes.txt"]
        assert (srv.root / "pulled-orders.csv").exists()

        # a second scheduled run finds nothing new
        shutil.copy(srv.root / "pulled-orders.csv", outbox / "pulled-orders.csv")
        again = local_stack.ingest("invoke", "RetrieveFunction", "-e", str(event), timeout=300)
        (report,) = json.loads(again.stdout)["jobs"]
        # the same name with a new mtime is a new version: fetched again, exactly once
        assert report["claimed"] == 1 and report["completed"], report
    finally:
        srv.stop()


def test_the_stacks_schedule_retrieves_with_the_builtin_engine(
    start_local_stack: Callable[..., RunningStack], tmp_path: Path
) -> None:
    """Our engine inside the function (managed mode: test_connectors_managed_e2e.py, a file
    of its own so that the two stacks, which mostly wait for their schedule, run side by side
    on the test workers)."""
    retrieve_on_the_stacks_schedule(start_local_stack, tmp_path, "builtin")


def retrieve_on_the_stacks_schedule(
    start_local_stack: Callable[..., RunningStack], tmp_path: Path, engine: str
) -> None:
    """The stack's own schedule runs the RetrieveFunction. ``builtin``: our engine inside the
    function. ``managed``: the function calls the Transfer API on the stack's AWS endpoint,
    the transfer runs in the background, and its events reach the TransferStatusFunction,
    the only writer of its status to the ledger (as in AWS)."""
    stack = start_local_stack(
        tmp_path / "stack",
        "--parameter", f"ConnectorEngine={engine}",
        "--parameter", "RetrieveSchedule=rate(1 minute)",
    )  # fmt: skip
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_partner"
    key_file.write_bytes(key.export_private_key())
    srv = start_sshd(tmp_path / "partner", key)
    try:
        outbox = srv.root / "outbox"
        outbox.mkdir()
        shutil.copy(ORDERS, outbox / "pulled-orders.csv")
        connector = _create_connector(stack, srv, key_file)
        _put_jobs_file(stack, connector, outbox, srv)

        # no invoke: the schedule (first after a minute) fires the retrieval
        entry = stack.wait_for_file(PULLED, timeout=300)
        assert entry["status"] == "PROCESSED", entry
        assert entry["rows_ok"] == len(ORDERS.read_text().splitlines()) - 1

        wait_for(
            lambda: json.loads(stack.ingest("status", PULLED, "--json").stdout)["source"],
            timeout=60,
            what="the transfer-status function to link the file to its transfer",
        )
        story = json.loads(stack.ingest("status", PULLED, "--json").stdout)
        (source,) = story["source"]
        transfer_id = source["transfer_id"]
        _assert_transfer_recorded(stack, connector, transfer_id, outbox)

        if engine == "managed":  # the Transfer API itself knows the transfer
            managed = stack.ingest(
                "connectors", "results", connector, transfer_id, "--json", "--engine", "managed"
            )
            assert [r["StatusCode"] for r in json.loads(managed.stdout)] == ["COMPLETED"]

        # the function ran in this mode, and its transfer's event reached the status function
        runs = [
            line
            for line in _json_lines(stack.state_dir / "logs" / "RetrieveFunction.log")
            if line.get("message") == "retrieval run"
        ]
        assert runs and {line["engine"] for line in runs} == {engine}
        assert transfer_id in (stack.state_dir / "logs" / "TransferStatusFunction.log").read_text()

        # after success, StartRemoteMove (managed: through the Transfer API) moved it
        wait_for(
            lambda: (
                (srv.root / "pulled-orders.csv").exists()
                and not (outbox / "pulled-orders.csv").exists()
            ),
            timeout=60,
            what="the remote move after success",
        )
    finally:
        srv.stop()
    assert stack.stop() == 0  # stops cleanly (the Transfer API's background work included)
