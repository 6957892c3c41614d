"""Building the connector service from an AWS target (the CLI's and the Lambdas' one call)."""

from __future__ import annotations

from typing import Any

from connectors.service import LocalConnectorService, ServicePorts
from connectors.status import EVENT_SOURCE, StatusPublisher, StatusStore
from ingest.aws import AwsTarget


def account_id(aws: AwsTarget) -> str:
    """The caller's account id (moto answers 123456789012)."""
    return str(aws.client("sts").get_caller_identity()["Account"])


def build_local_service(
    aws: AwsTarget,
    ledger_table: str,
    *,
    event_source: str = EVENT_SOURCE,
    **options: Any,
) -> LocalConnectorService:
    """A :class:`LocalConnectorService` whose clients all point at ``aws``."""
    ports = ServicePorts(
        transfer=aws.client("transfer"),
        secrets=aws.client("secretsmanager"),
        s3=aws.client("s3"),
        store=StatusStore(aws.client("dynamodb"), ledger_table),
        publisher=StatusPublisher(aws.client("logs"), aws.client("events"), source=event_source),
        account_id=account_id(aws),
    )
    return LocalConnectorService(ports, **options)
