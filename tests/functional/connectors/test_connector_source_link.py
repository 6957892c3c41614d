"""The transfer that brought a file: a completed retrieve links the landed object to its
transfer in the ledger (``FILE#<key>`` / ``SOURCE#<transfer-id>``), whoever stores the final
status (the builtin engine, or the transfer-status function from an event), and ``ingest
status KEY`` shows it."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from connector_fixtures import BUCKET, LEDGER, Aws, SftpServer, make_connector, start_sshd
from msgspec.structs import replace

from connectors.service import BuiltinConnectorService
from connectors.status import FileRecord, FileTransferStatus, StatusStore
from connectors.usecases import record_from_event
from ingest.adapters.dynamo import from_item
from ingest.adapters.ledger import Ledger
from ingest.cli import status as status_cli
from ingest.cli.context import Deployment

KEY = "inbound/p/orders/a.csv"


@pytest.fixture
def sshd(tmp_path: Path, client_key: asyncssh.SSHKey) -> Iterator[SftpServer]:
    srv = start_sshd(tmp_path / "sshd", client_key)
    yield srv
    srv.stop()


def _links(aws: Aws, key: str) -> list[dict[str, Any]]:
    items = aws.ddb.query(
        TableName=LEDGER,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :s)",
        ExpressionAttributeValues={":pk": {"S": f"FILE#{key}"}, ":s": {"S": "SOURCE#"}},
    )["Items"]
    return [from_item(i) for i in items]


def _event(record: FileRecord) -> dict[str, Any]:
    """The EventBridge event AWS sends for a final file record."""
    return {
        "detail-type": record.detail_type(),
        "source": "aws.transfer",
        "account": "123456789012",
        "resources": [record.connector_arn],
        "detail": record.event_detail(),
    }


def test_a_retrieve_links_the_landed_file_to_its_transfer_and_status_shows_it(
    aws: Aws,
    *,
    sshd: SftpServer,
    client_key: asyncssh.SSHKey,
    service: BuiltinConnectorService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (sshd.root / "a.csv").write_text("id\n1\n")
    connector = make_connector(aws, sshd, client_key)
    transfer_id = service.start_file_transfer(
        ConnectorId=connector,
        RetrieveFilePaths=[sshd.path_of("a.csv"), sshd.path_of("missing.csv")],
        LocalDirectoryPath=f"/{BUCKET}/inbound/p/orders",
    )["TransferId"]

    # the builtin engine stored the final status, and with it the link (the failed file has none)
    (link,) = _links(aws, KEY)
    assert link["connector_id"] == connector
    assert link["transfer_id"] == transfer_id
    assert link["remote_path"] == sshd.path_of("a.csv")
    assert link["url"] == sshd.url
    assert link["completed_at"] and int(link["bytes"]) == len("id\n1\n")
    assert int(link["expires_at"]) > time.time() + 6 * 86400
    assert _links(aws, "inbound/p/orders/missing.csv") == []

    # the transfer-status function stores a managed transfer's status from its event alone
    managed = FileRecord(
        operation="RETRIEVE",
        connector_id=connector,
        connector_arn=f"arn:aws:transfer:us-east-1:123456789012:connector/{connector}",
        account_id="123456789012",
        transfer_id="11111111-2222-3333-4444-555555555555",
        url=sshd.url,
        file_path="/outbox/a.csv",
        directory_field="local-directory-path",
        directory=f"/{BUCKET}/inbound/p/orders",
        status=FileTransferStatus.COMPLETED,
        start_time="2026-12-01T10:00:00Z",
        end_time="2026-12-01T10:00:01Z",
        bytes=5,
        bucket=BUCKET,
        key=KEY,
    )
    store = StatusStore(aws.ddb, LEDGER)
    store.save(record_from_event(_event(managed)))
    failed = replace(managed, transfer_id="f" * 36, key="x/failed.csv")
    failed.status, failed.failure_code, failed.failure_message = (
        FileTransferStatus.FAILED,
        "RETRIEVE_FILE_NOT_FOUND",
        "gone",
    )
    store.save(record_from_event(_event(failed)))
    assert sorted(link["transfer_id"] for link in _links(aws, KEY)) == sorted(
        [transfer_id, managed.transfer_id]
    )
    assert _links(aws, "x/failed.csv") == []

    # ingest status KEY: the file's entry with its sources, in JSON and in the table
    sqs = aws.target.client("sqs")
    queue = sqs.create_queue(QueueName="work")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    Ledger(aws.ddb, LEDGER).start_file(
        key=KEY, feed="orders", version="v1", etag="e", size=5, chunks=1
    )
    deployment = Deployment(
        aws=aws.target,
        resources={"ledger_table": LEDGER, "bucket": BUCKET, "queue_url": queue, "dlq_url": dlq},
    )
    monkeypatch.setattr(status_cli, "resolve_deployment", lambda args: deployment)
    status_cli.cmd_status(argparse.Namespace(key=KEY, json=True))
    story = json.loads(capsys.readouterr().out)
    assert [s["transfer_id"] for s in story["source"]] == [managed.transfer_id, transfer_id]
    assert story["source"][0] == {
        "connector_id": connector,
        "transfer_id": managed.transfer_id,
        "url": sshd.url,
        "remote_path": "/outbox/a.csv",
        "completed_at": "2026-12-01T10:00:01Z",
        "bytes": 5,
    }
    status_cli.cmd_status(argparse.Namespace(key=KEY, json=False))
    table = capsys.readouterr().out
    assert (
        f"Source: connector {connector}, transfer {transfer_id}, "
        f"{sshd.url}{sshd.path_of('a.csv')} at {link['completed_at']}"
    ) in table
