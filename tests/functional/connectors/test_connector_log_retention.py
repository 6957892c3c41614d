"""The connector log groups the builtin engine creates keep their entries for the stack's
LogRetentionDays (LOG_RETENTION_DAYS), and a group that already exists keeps its own."""

from __future__ import annotations

from typing import Any

from connector_fixtures import BUCKET, LEDGER, Aws

from connectors.status import FileRecord, FileTransferStatus
from connectors.usecases import ConnectorSettings
from connectors.wiring import build_connector_ports


def _record(connector_id: str) -> FileRecord:
    return FileRecord(
        operation="RETRIEVE",
        connector_id=connector_id,
        connector_arn=f"arn:aws:transfer:us-east-1:123456789012:connector/{connector_id}",
        account_id="123456789012",
        transfer_id="11111111-2222-3333-4444-555555555555",
        url="sftp://partner.example",
        file_path="/outbox/a.csv",
        directory_field="local-directory-path",
        directory=f"/{BUCKET}/inbound/p/orders",
        status=FileTransferStatus.COMPLETED,
        bytes=5,
        bucket=BUCKET,
        key="inbound/p/orders/a.csv",
    )


def _group(aws: Aws, name: str) -> dict[str, Any]:
    groups = aws.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [name]
    return dict(groups[0])


def test_created_groups_get_the_retention_and_existing_ones_keep_theirs(aws: Aws) -> None:
    env = {"LANDING_BUCKET": BUCKET, "LEDGER_TABLE": LEDGER, "LOG_RETENTION_DAYS": "30"}
    ports = build_connector_ports(ConnectorSettings.from_env(env))
    aws.logs.create_log_group(logGroupName="/aws/transfer/c-00000000000000002")
    aws.logs.put_retention_policy(
        logGroupName="/aws/transfer/c-00000000000000002", retentionInDays=7
    )
    try:
        ports.api.ports.publisher.publish(_record("c-00000000000000001"))
        ports.api.ports.publisher.publish(_record("c-00000000000000002"))
    finally:
        ports.api.close()
    assert _group(aws, "/aws/transfer/c-00000000000000001")["retentionInDays"] == 30
    assert _group(aws, "/aws/transfer/c-00000000000000002")["retentionInDays"] == 7


def test_without_the_setting_a_created_group_keeps_cloudwatchs_default(aws: Aws) -> None:
    env = {"LANDING_BUCKET": BUCKET, "LEDGER_TABLE": LEDGER}
    ports = build_connector_ports(ConnectorSettings.from_env(env))
    try:
        ports.api.ports.publisher.publish(_record("c-00000000000000003"))
    finally:
        ports.api.close()
    assert "retentionInDays" not in _group(aws, "/aws/transfer/c-00000000000000003")
