"""The transfer-status function's ports: the ledger, and no connector engine.

The function settles retrieval claims from the connector's events. In managed mode it runs a
claim's after-success action through the Transfer API (boto3's ``transfer`` client); with the
builtin engine it leaves the action pending for the job's next retrieve run
(:func:`connectors.claims.settle`), so its package needs no SFTP engine (asyncssh and
cryptography: ``lambdas/requirements-core.txt``). Nothing here imports :mod:`connectors.service`.
"""

from __future__ import annotations

from msgspec import Struct

from connectors.claims import ConnectorApi, JobPorts
from connectors.status import StatusStore
from connectors.usecases import MANAGED, ConnectorSettings, engine_name
from ingest.adapters.aws import AwsTarget


class StatusPorts(Struct, frozen=True):
    """What the transfer-status function calls: the Transfer API in managed mode (else None:
    after-success actions are left pending), the jobs' ledger ports, the status store."""

    api: ConnectorApi | None
    jobs: JobPorts
    status: StatusStore


def build_status_ports(settings: ConnectorSettings) -> StatusPorts:
    """TransferStatusFunction's ports, from its settings."""
    aws = AwsTarget(region=settings.region, endpoint_url=settings.endpoint_url)
    db = aws.client("dynamodb")
    jobs = JobPorts(s3=aws.client("s3"), db=db, table=settings.ledger_table, bucket=settings.bucket)
    api = aws.client("transfer") if engine_name(settings.engine) == MANAGED else None
    return StatusPorts(api=api, jobs=jobs, status=StatusStore(db, settings.ledger_table))
