"""``ingest connectors …`` as an operator runs it: a subprocess against a state dir (moto server)
and a real OpenSSH sshd."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import boto3
import pytest
from connector_fixtures import SftpServer, start_sshd
from moto.server import ThreadedMotoServer

from ingest.cli import main
from ingest.cli.endpoints import Endpoints, write_endpoints
from ingest_local.tables import create_pk_sk_table

BUCKET = "cli-landing"
LEDGER = "cli-ledger"


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    create_pk_sk_table(boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1"), LEDGER)
    state = tmp_path / "state"
    write_endpoints(
        state,
        Endpoints(
            aws_endpoint_url=url,
            region="us-east-1",
            sftp=None,
            resources={"bucket": BUCKET, "ledger_table": LEDGER},
        ),
    )
    yield state
    server.stop()


def ingest_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point (slow to start: used once, for ``create``)."""
    return subprocess.run(
        [sys.executable, "-m", "ingest", "connectors", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )


def ingest(*args: str) -> subprocess.CompletedProcess[str]:
    """The same parser and commands, in this process (``ingest.cli.main``)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["connectors", *args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def _scan_fingerprint(srv: SftpServer) -> str:
    """``scan`` reports the server's host key fingerprint; that fingerprint."""
    scan = ingest("scan", f"127.0.0.1:{srv.port}", "--json")
    assert scan.returncode == 0, scan.stderr
    scanned = json.loads(scan.stdout)
    assert [s["sha256"] for s in scanned] == [str(srv.host_keys[0].get_fingerprint("sha256"))]
    return str(scanned[0]["sha256"])


def _create(sd: list[str], srv: SftpServer, key_file: Path, fingerprint: str) -> str:
    """``create`` refuses a bad trusted host key, then (the real console script) prints the new
    connector's id; that id."""
    bad = ingest(
        "create",
        *sd,
        "--url",
        srv.url,
        "--user",
        "root",
        "--private-key",
        str(key_file),
        "--trusted-host-key",
        "SHA256:not-a-fingerprint",
    )
    assert bad.returncode == 2 and "not a public key" in bad.stderr

    created = ingest_subprocess(
        "create",
        *sd,
        "--url",
        srv.url,
        "--user",
        "root",
        "--private-key",
        str(key_file),
        "--trusted-host-key",
        fingerprint,
        "--max-connections",
        "2",
    )
    assert created.returncode == 0, created.stderr
    connector = created.stdout.strip()
    assert connector.startswith("c-") and len(connector) == 19
    return connector


def _check_list_describe_test(sd: list[str], connector: str, fingerprint: str) -> None:
    listed = ingest("list", *sd, "--json")
    assert [c["ConnectorId"] for c in json.loads(listed.stdout)] == [connector]
    described = json.loads(ingest("describe", *sd, connector).stdout)
    assert described["trusted_host_keys"] == [fingerprint]
    assert described["max_concurrent_connections"] == 2
    assert "PrivateKey" not in json.dumps(described)

    tested = ingest("test", *sd, connector)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert json.loads(tested.stdout)["Status"] == "OK"


def _check_retrieve_and_results(sd: list[str], srv: SftpServer, connector: str) -> None:
    """A retrieve with one missing file exits 1; ``results`` tells each file's outcome."""
    moved = ingest(
        "transfer",
        *sd,
        connector,
        "--retrieve",
        srv.path_of("out/a.csv"),
        srv.path_of("out/missing.csv"),
        "--to",
        f"/{BUCKET}/inbound/acme/orders",
    )
    assert moved.returncode == 1  # one file failed
    transfer_id = moved.stdout.strip()
    assert "RETRIEVE_FILE_NOT_FOUND" in moved.stderr
    assert "a.csv" in moved.stderr  # the progress line of the completed file

    results = ingest("results", *sd, connector, transfer_id, "--json")
    assert results.returncode == 0, results.stderr
    assert json.loads(results.stdout) == [
        {
            "FilePath": srv.path_of("out/a.csv"),
            "StatusCode": "COMPLETED",
            "FailureCode": None,
            "FailureMessage": None,
        },
        {
            "FilePath": srv.path_of("out/missing.csv"),
            "StatusCode": "FAILED",
            "FailureCode": "RETRIEVE_FILE_NOT_FOUND",
            "FailureMessage": json.loads(results.stdout)[1]["FailureMessage"],
        },
    ]


def _check_send(sd: list[str], srv: SftpServer, connector: str) -> None:
    """A send to a missing remote directory fails; once it exists, the file arrives."""
    send = [
        "transfer",
        *sd,
        connector,
        "--send",
        f"/{BUCKET}/inbound/acme/orders/a.csv",
        "--remote-dir",
        srv.path_of("out/back"),
    ]
    ok = ingest(*send)
    assert ok.returncode == 1 and "REMOTE_DIRECTORY_NOT_FOUND" in ok.stderr
    (srv.root / "out" / "back").mkdir()
    ok = ingest(*send, "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert (srv.root / "out" / "back" / "a.csv").read_text() == "id\n1\n"


def _check_listing(sd: list[str], srv: SftpServer, connector: str) -> None:
    listing = ingest(
        "listing",
        *sd,
        connector,
        "--remote-dir",
        srv.path_of("out"),
        "--to",
        f"/{BUCKET}/listings",
    )
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    assert [f["filePath"] for f in data["files"]] == [srv.path_of("out/a.csv")]
    assert data["paths"] == [{"path": srv.path_of("out/back")}]


def _check_eleven_refused_and_delete(sd: list[str], connector: str) -> None:
    eleven = ingest(
        "transfer",
        *sd,
        connector,
        "--retrieve",
        *[f"/f{i}" for i in range(11)],
        "--to",
        f"/{BUCKET}/x",
    )
    assert eleven.returncode == 2 and "1 to 10 paths" in eleven.stderr

    assert ingest("delete", *sd, connector).returncode == 0
    assert json.loads(ingest("list", *sd, "--json").stdout) == []
    gone = ingest("describe", *sd, connector)
    assert gone.returncode == 2 and "does not exist" in gone.stderr


def _check_schedule(sd: list[str], connector: str, state_dir: Path, tmp_path: Path) -> None:
    """``schedule`` refuses a bad jobs file and an unknown connector, ``--check`` installs
    nothing, and then the file is where the RetrieveFunction reads it."""
    endpoint = json.loads((state_dir / "endpoints.json").read_text())["aws_endpoint_url"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    jobs = tmp_path / "retrievals.yaml"

    def job(connector_id: str, destination: str = "inbound/acme/orders") -> str:
        return (
            "retrievals:\n"
            "  - name: acme-orders\n"
            f"    connector_id: {connector_id}\n"
            "    remote_directory: /out\n"
            "    pattern: '*.csv'\n"
            f"    destination: {destination}\n"
            "    after_success: {move_to: /out/archive}\n"
        )

    jobs.write_text(job(connector, destination="elsewhere/orders"))
    bad = ingest("schedule", str(jobs), *sd)
    assert bad.returncode == 2
    assert "job 'acme-orders', field 'destination'" in bad.stderr

    jobs.write_text(job("c-0123456789abcdef0"))
    unknown = ingest("schedule", str(jobs), *sd)
    assert unknown.returncode == 2 and "c-0123456789abcdef0" in unknown.stderr

    jobs.write_text(job(connector))
    checked = ingest("schedule", str(jobs), "--check", *sd)
    assert checked.returncode == 0, checked.stderr
    assert "not installed" in checked.stdout
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="config/").get("KeyCount") == 0

    installed = ingest("schedule", str(jobs), *sd)
    assert installed.returncode == 0, installed.stderr
    assert "acme-orders" in installed.stdout and "move to /out/archive" in installed.stdout
    body = s3.get_object(Bucket=BUCKET, Key="config/retrievals.yaml")["Body"].read()
    assert body.decode() == jobs.read_text()
    s3.delete_object(Bucket=BUCKET, Key="config/retrievals.yaml")


def test_operator_flow_create_scan_transfer_results(state_dir: Path, tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_partner"
    key_file.write_bytes(key.export_private_key())
    srv = start_sshd(tmp_path / "sshd", key)
    try:
        (srv.root / "out").mkdir()
        (srv.root / "out" / "a.csv").write_text("id\n1\n")
        sd = ["--state-dir", str(state_dir)]

        fingerprint = _scan_fingerprint(srv)
        connector = _create(sd, srv, key_file, fingerprint)
        _check_list_describe_test(sd, connector, fingerprint)
        _check_schedule(sd, connector, state_dir, tmp_path)
        _check_retrieve_and_results(sd, srv, connector)
        _check_send(sd, srv, connector)
        _check_listing(sd, srv, connector)
        _check_eleven_refused_and_delete(sd, connector)
    finally:
        srv.stop()
