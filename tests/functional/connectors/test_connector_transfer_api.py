"""The local stack's Transfer connector API (``ingest_local.transfer_api``) driven by boto3
over HTTP, as the RetrieveFunction drives it with ``ConnectorEngine=managed``: asynchronous
calls, results, events, the connector's log group, and AWS's errors as ``ClientError``.

Real servers: Debian's OpenSSH sshd, and an asyncssh server whose ``open`` waits for the test
(so a transfer is provably still running when the call has returned)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from botocore.exceptions import ClientError
from connector_fixtures import (
    Aws,
    LoopThread,
    SftpServer,
    make_connector,
    start_asyncssh,
    start_sshd,
)
from support_aws import fake_aws_env, wait_for

from ingest.adapters.aws import AwsTarget
from ingest_local.moto_fidelity import serialize_dynamodb_requests
from ingest_local.transfer_api import LocalAwsEndpoint, start_transfer_service

REGION = "us-east-1"
FINAL = ("COMPLETED", "FAILED")


@dataclass
class Api:
    """A running endpoint (moto + the connector API), its clients and a fresh bucket."""

    endpoint: LocalAwsEndpoint
    aws: Aws
    bucket: str
    events_queue: str
    #: every event received from the capture queue so far
    seen: list[dict[str, Any]] = field(default_factory=list)

    def results(self, connector: str, transfer_id: str) -> list[dict[str, Any]]:
        out = self.aws.transfer.list_file_transfer_results(
            ConnectorId=connector, TransferId=transfer_id
        )
        return list(out["FileTransferResults"])

    def final_results(self, connector: str, transfer_id: str) -> list[dict[str, Any]]:
        def final() -> list[dict[str, Any]] | None:
            results = self.results(connector, transfer_id)
            return results if all(r["StatusCode"] in FINAL for r in results) else None

        return wait_for(final, timeout=60, what=f"transfer {transfer_id} to be final")

    def events(self, detail_type: str, count: int) -> list[dict[str, Any]]:
        """The first ``count`` events of this detail-type delivered to the capture queue."""
        sqs = self.aws.target.client("sqs")
        seen = self.seen

        def enough() -> bool:
            for m in sqs.receive_message(QueueUrl=self.events_queue, MaxNumberOfMessages=10).get(
                "Messages", []
            ):
                seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.events_queue, ReceiptHandle=m["ReceiptHandle"])
            return len([e for e in seen if e["detail-type"] == detail_type]) >= count

        wait_for(enough, timeout=60, what=f"{count} {detail_type!r} events")
        return [e for e in seen if e["detail-type"] == detail_type]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    fake_aws_env(monkeypatch, REGION)
    serialize_dynamodb_requests()
    endpoint = LocalAwsEndpoint("127.0.0.1", 0)
    endpoint.start()
    host, port = endpoint.get_host_and_port()
    target = AwsTarget(region=REGION, endpoint_url=f"http://{host}:{port}")
    aws = Aws(
        target=target,
        s3=target.client("s3"),
        ddb=target.client("dynamodb"),
        logs=target.client("logs"),
        events=target.client("events"),
        transfer=target.client("transfer"),
        secrets=target.client("secretsmanager"),
    )
    # moto's backends are process-wide: names of this test's own
    suffix = uuid.uuid4().hex[:8]
    bucket = f"shim-{suffix}"
    aws.s3.create_bucket(Bucket=bucket)
    endpoint.api.attach(start_transfer_service(target, f"shim-{suffix}"))
    sqs = target.client("sqs")
    queue = sqs.create_queue(QueueName=f"shim-events-{suffix}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = f"shim-{suffix}"
    aws.events.put_rule(
        Name=rule,
        EventPattern=json.dumps(
            {"source": ["aws.transfer"], "detail-type": [{"prefix": "SFTP Connector "}]}
        ),
    )
    aws.events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    try:
        yield Api(endpoint, aws, bucket, queue)
    finally:
        endpoint.stop()


@pytest.fixture
def sshd(tmp_path: Path, client_key: asyncssh.SSHKey) -> Iterator[SftpServer]:
    srv = start_sshd(tmp_path / "sshd", client_key)
    yield srv
    srv.stop()


def _gated_server(tmp_path: Path, client_key: asyncssh.SSHKey, gate: threading.Event) -> SftpServer:
    """An asyncssh SFTP server whose file opens wait until ``gate`` is set."""

    class Gated(asyncssh.SFTPServer):
        async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
            while not gate.is_set():
                await asyncio.sleep(0.02)
            return super().open(path, pflags, attrs)

    return start_asyncssh(tmp_path / "gated", client_key, sftp_class=Gated)


def test_a_transfer_is_asynchronous_and_reports_like_aws(
    api: Api, tmp_path: Path, client_key: asyncssh.SSHKey
) -> None:
    gate = threading.Event()
    srv = _gated_server(tmp_path, client_key, gate)
    try:
        (srv.root / "a.csv").write_text("id\n1\n2\n")
        connector = make_connector(api.aws, srv, client_key)
        transfer_id = api.aws.transfer.start_file_transfer(
            ConnectorId=connector,
            RetrieveFilePaths=["/a.csv", "/missing.csv"],
            LocalDirectoryPath=f"/{api.bucket}/inbound/p/orders",
        )["TransferId"]

        # the call has returned while the server still holds the file back
        running = api.results(connector, transfer_id)
        assert [r["FilePath"] for r in running] == ["/a.csv", "/missing.csv"]
        assert running[0]["StatusCode"] in ("QUEUED", "IN_PROGRESS"), running
        assert api.aws.s3.list_objects_v2(Bucket=api.bucket).get("KeyCount") == 0

        gate.set()
        done = api.final_results(connector, transfer_id)
        assert [r["StatusCode"] for r in done] == ["COMPLETED", "FAILED"], done
        assert done[1]["FailureCode"] == "RETRIEVE_FILE_NOT_FOUND"
        body = api.aws.s3.get_object(Bucket=api.bucket, Key="inbound/p/orders/a.csv")["Body"]
        assert body.read() == b"id\n1\n2\n"

        (completed,) = api.events("SFTP Connector File Retrieve Completed", 1)
        assert completed["source"] == "aws.transfer"
        assert completed["detail"]["transfer-id"] == transfer_id
        assert completed["detail"]["local-file-location"] == {
            "domain": "S3",
            "bucket": api.bucket,
            "key": "inbound/p/orders/a.csv",
        }
        (failed,) = api.events("SFTP Connector File Retrieve Failed", 1)
        assert failed["detail"]["failure-code"] == "RETRIEVE_FILE_NOT_FOUND"

        logged = api.aws.logs.filter_log_events(logGroupName=f"/aws/transfer/{connector}")
        records = [json.loads(e["message"]) for e in logged["events"]]
        assert sorted(r["status-code"] for r in records) == ["COMPLETED", "FAILED"]
        assert {r["transfer-id"] for r in records} == {transfer_id}
    finally:
        gate.set()
        srv.stop()


def test_aws_errors_come_back_as_client_errors(
    api: Api, sshd: SftpServer, client_key: asyncssh.SSHKey
) -> None:
    with pytest.raises(ClientError) as unknown:
        api.aws.transfer.start_file_transfer(
            ConnectorId="c-0123456789abcdef0",
            RetrieveFilePaths=["/a.csv"],
            LocalDirectoryPath=f"/{api.bucket}/in",
        )
    error = unknown.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException"
    assert "c-0123456789abcdef0" in error["Message"]
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    connector = make_connector(api.aws, sshd, client_key)
    with pytest.raises(ClientError) as no_transfer:
        api.results(connector, str(uuid.uuid4()))
    assert no_transfer.value.response["Error"]["Code"] == "ResourceNotFoundException"

    with pytest.raises(ClientError) as too_many:
        api.aws.transfer.start_file_transfer(
            ConnectorId=connector,
            RetrieveFilePaths=[f"/f{i}.csv" for i in range(11)],
            LocalDirectoryPath=f"/{api.bucket}/in",
        )
    assert too_many.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "1 to 10 paths" in too_many.value.response["Error"]["Message"]

    # what moto serves still comes from moto
    described = api.aws.transfer.describe_connector(ConnectorId=connector)["Connector"]
    assert described["Url"] == sshd.url


def test_host_key_mismatch_fails_the_file_with_both_fingerprints(
    api: Api, sshd: SftpServer, client_key: asyncssh.SSHKey
) -> None:
    (sshd.root / "a.csv").write_text("id\n1\n")
    real_partner = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    connector = make_connector(
        api.aws, sshd, client_key, trusted=[real_partner.export_public_key().decode()]
    )
    transfer_id = api.aws.transfer.start_file_transfer(
        ConnectorId=connector,
        RetrieveFilePaths=[sshd.path_of("a.csv")],
        LocalDirectoryPath=f"/{api.bucket}/in",
    )["TransferId"]
    (result,) = api.final_results(connector, transfer_id)
    assert (result["StatusCode"], result["FailureCode"]) == ("FAILED", "HOST_KEY_MISMATCH")
    assert str(real_partner.get_fingerprint("sha256")) in result["FailureMessage"]
    assert str(sshd.host_keys[0].get_fingerprint("sha256")) in result["FailureMessage"]
    assert api.aws.s3.list_objects_v2(Bucket=api.bucket).get("KeyCount") == 0
    (event,) = api.events("SFTP Connector File Retrieve Failed", 1)
    assert event["detail"]["failure-code"] == "HOST_KEY_MISMATCH"

    check = api.aws.transfer.test_connection(ConnectorId=connector)
    assert check["Status"] == "ERROR" and "HOST_KEY_MISMATCH" in check["StatusMessage"]


def test_no_credentials_reach_an_unverified_server(
    api: Api, tmp_path: Path, client_key: asyncssh.SSHKey
) -> None:
    """The asyncssh server records every authentication attempt: there must be none."""
    attempts: list[str] = []

    class Recording(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            attempts.append(username)
            return True

    loop = LoopThread()
    key = asyncssh.generate_private_key("ssh-ed25519")

    async def listen() -> Any:
        return await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[key], server_factory=Recording, sftp_factory=True
        )

    listener = loop.run(listen())
    try:
        recording = SftpServer("127.0.0.1", listener.get_port(), [key], tmp_path, "asyncssh")
        other = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
        connector = make_connector(
            api.aws, recording, client_key, trusted=[str(other.get_fingerprint("sha256"))]
        )
        transfer_id = api.aws.transfer.start_file_transfer(
            ConnectorId=connector,
            RetrieveFilePaths=["/etc/hostname"],
            LocalDirectoryPath=f"/{api.bucket}/in",
        )["TransferId"]
        (result,) = api.final_results(connector, transfer_id)
        assert result["FailureCode"] == "HOST_KEY_MISMATCH"
        assert attempts == []
    finally:
        listener.close()
        loop.close()


def test_listing_and_remote_move_are_asynchronous_with_their_events(
    api: Api, sshd: SftpServer, client_key: asyncssh.SSHKey
) -> None:
    (sshd.root / "out").mkdir()
    (sshd.root / "out" / "a.csv").write_text("id\n1\n")
    connector = make_connector(api.aws, sshd, client_key)
    started = api.aws.transfer.start_directory_listing(
        ConnectorId=connector,
        RemoteDirectoryPath=sshd.path_of("out"),
        OutputDirectoryPath=f"/{api.bucket}/listings",
    )
    assert started["OutputFileName"] == f"{connector}-{started['ListingId']}.json"
    (listed,) = api.events("SFTP Connector Directory Listing Completed", 1)
    assert listed["detail"]["listing-id"] == started["ListingId"]
    key = f"listings/{started['OutputFileName']}"
    listing = json.loads(api.aws.s3.get_object(Bucket=api.bucket, Key=key)["Body"].read())
    assert [f["filePath"] for f in listing["files"]] == [sshd.path_of("out/a.csv")]

    move_id = api.aws.transfer.start_remote_move(
        ConnectorId=connector,
        SourcePath=sshd.path_of("out/a.csv"),
        TargetPath=sshd.path_of("a.csv"),
    )["MoveId"]
    (moved,) = api.events("SFTP Connector Remote Move Completed", 1)
    assert moved["detail"]["move-id"] == move_id
    assert (sshd.root / "a.csv").exists() and not (sshd.root / "out" / "a.csv").exists()

    delete_id = api.aws.transfer.start_remote_delete(
        ConnectorId=connector, DeletePath=sshd.path_of("missing.csv")
    )["DeleteId"]
    (failed,) = api.events("SFTP Connector Remote Delete Failed", 1)
    assert failed["detail"]["delete-id"] == delete_id
    assert failed["detail"]["status-code"] == "FAILED"
    assert failed["detail"]["failure-code"] == "REMOTE_FILE_NOT_FOUND"

    check = api.aws.transfer.test_connection(ConnectorId=connector)
    assert check["Status"] == "OK"
    assert check["SftpConnectionDetails"]["HostKey"].split()[:2] == sshd.public_keys()[0].split()


def test_stopping_the_endpoint_cancels_a_running_transfer(
    api: Api, tmp_path: Path, client_key: asyncssh.SSHKey
) -> None:
    gate = threading.Event()  # never set: the transfer can only end by being cancelled
    srv = _gated_server(tmp_path, client_key, gate)
    try:
        (srv.root / "a.csv").write_text("id\n1\n")
        connector = make_connector(api.aws, srv, client_key)
        service = api.endpoint.api._service
        assert service is not None
        api.aws.transfer.start_file_transfer(
            ConnectorId=connector,
            RetrieveFilePaths=["/a.csv"],
            LocalDirectoryPath=f"/{api.bucket}/in",
        )
        assert service.running == 1
        api.endpoint.api.close()  # returns: the transfer was cancelled and waited for
        assert service.running == 0
        with pytest.raises(ClientError) as stopped:
            api.aws.transfer.list_file_transfer_results(ConnectorId=connector, TransferId="x")
        assert stopped.value.response["Error"]["Code"] == "ServiceUnavailableException"
    except Exception:
        gate.set()
        raise
    finally:
        srv.stop()
