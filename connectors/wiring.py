"""Building the connector service from an AWS target (the CLI's and the Lambdas' one call)."""

from __future__ import annotations

from typing import Any, TypeVar

from msgspec import Struct

from connectors.claims import ConnectorApi, JobPorts
from connectors.service import BuiltinConnectorService, ServicePorts
from connectors.status import EVENT_SOURCE, StatusPublisher, StatusStore
from connectors.usecases import MANAGED, ConnectorSettings, engine_name
from ingest.adapters.aws import AwsTarget
from ingest.adapters.multipart import STREAMING_S3_CONFIG

S = TypeVar("S", bound=BuiltinConnectorService)


def account_id(aws: AwsTarget) -> str:
    """The caller's account id (moto answers 123456789012)."""
    return str(aws.client("sts").get_caller_identity()["Account"])


def build_builtin_service(
    aws: AwsTarget,
    ledger_table: str,
    *,
    event_source: str = EVENT_SOURCE,
    service_class: type[S] = BuiltinConnectorService,  # type: ignore[assignment]
    log_retention_days: int | None = None,
    **options: Any,
) -> S:
    """A :class:`BuiltinConnectorService` (or ``service_class``) whose clients all point at
    ``aws``; its transfer results are kept in ``ledger_table``, and the connector log groups
    it creates keep their entries for ``log_retention_days``."""
    ports = ServicePorts(
        transfer=aws.client("transfer"),
        secrets=aws.client("secretsmanager"),
        s3=aws.client("s3", config=STREAMING_S3_CONFIG),
        store=StatusStore(aws.client("dynamodb"), ledger_table),
        publisher=StatusPublisher(
            aws.client("logs"),
            aws.client("events"),
            source=event_source,
            retention_days=log_retention_days,
        ),
        account_id=account_id(aws),
    )
    return service_class(ports, **options)


def build_api(
    aws: AwsTarget, engine: str, ledger_table: str, *, log_retention_days: int | None = None
) -> Any:
    """The connector API for an engine: boto3's ``transfer`` client when ``managed``, else
    our :class:`BuiltinConnectorService` (same method names and shapes)."""
    if engine_name(engine) == MANAGED:
        return aws.client("transfer")
    return build_builtin_service(aws, ledger_table, log_retention_days=log_retention_days)


class ConnectorPorts(Struct, frozen=True):
    """What the two connector functions call: the connector API, the jobs' ports, the
    transfer-status store."""

    api: ConnectorApi
    jobs: JobPorts
    status: StatusStore


def build_connector_ports(settings: ConnectorSettings) -> ConnectorPorts:
    """RetrieveFunction's and TransferStatusFunction's ports, from their settings."""
    aws = AwsTarget(region=settings.region, endpoint_url=settings.endpoint_url)
    db = aws.client("dynamodb")
    jobs = JobPorts(s3=aws.client("s3"), db=db, table=settings.ledger_table, bucket=settings.bucket)
    api = build_api(
        aws, settings.engine, settings.ledger_table, log_retention_days=settings.log_retention_days
    )
    return ConnectorPorts(api=api, jobs=jobs, status=StatusStore(db, settings.ledger_table))
