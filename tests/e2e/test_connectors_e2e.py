"""A scheduled retrieval on the whole local stack: ``ingest up``, a partner's OpenSSH sshd, the
connector created with the CLI, the RetrieveFunction run as the stack runs it, and the pulled
file ingested by the S3 trigger like an upload."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import asyncssh
import pytest
from stack_kit import RunningStack
from support_aws import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functional" / "connectors"))
from connector_fixtures import SftpServer, start_sshd

REPO = Path(__file__).resolve().parents[2]
ORDERS = REPO / "fixtures" / "files" / "orders" / "orders-2026-11-01.csv"

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

        entry = local_stack.wait_for_file("inbound/pullpartner/orders/pulled-orders.csv")
        assert entry["status"] == "PROCESSED", entry
        assert entry["rows_ok"] == len(ORDERS.read_text().splitlines()) - 1
        _wait_for_status_function(local_stack)

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
