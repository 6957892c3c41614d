"""The core of the two connector functions (the Lambda handlers stay thin).

* ``retrieve``: on its schedule, run every job of ``retrievals.yaml``
  (:mod:`connectors.retrieval`, which reads that file with the schema library);
* ``transfer_status``: a connector event (AWS's ``aws.transfer`` or ours) → the transfer's
  status in the ledger, and the claim of a scheduled retrieval settled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from msgspec import Struct

from connectors.jobs import ConnectorApi, JobPorts, JobReport, settle
from connectors.status import FileRecord, FileTransferStatus, StatusStore
from ingest.adapters.aws import DEFAULT_REGION
from ingest.errors import InvalidEventError
from ingest.settings import REGION, Count, read_env, variable

#: Who moves the files: our asyncssh engine inside the function (builtin), or the Transfer
#: Family service (managed). "local" is the old name of builtin, kept for deployed stacks.
BUILTIN = "builtin"
MANAGED = "managed"
ENGINES = (BUILTIN, MANAGED)
ENGINE_ALIASES = {"local": BUILTIN}
#: where the jobs file is by default: next to the feeds, in the landing bucket
RETRIEVALS_KEY = "config/retrievals.yaml"


def engine_name(value: str) -> str:
    """The engine a setting or flag names (``local`` is read as ``builtin``)."""
    return ENGINE_ALIASES.get(value, value)


def _engine(value: str) -> str:
    engine = engine_name(value)
    if engine not in ENGINES:
        raise ValueError(f"must be one of {ENGINES} (or 'local', the old name of {BUILTIN})")
    return engine


class ConnectorSettings(Struct, frozen=True, kw_only=True):
    """Environment of the connector functions, validated once at cold start."""

    bucket: Annotated[str, variable("LANDING_BUCKET")]
    ledger_table: Annotated[str, variable("LEDGER_TABLE")]
    #: by default the jobs file next to the feeds, in the landing bucket (``retrievals_uri``)
    retrievals_uri_setting: Annotated[str, variable("RETRIEVALS_URI")] = ""
    engine: Annotated[str, variable("CONNECTOR_ENGINE", before=_engine)] = BUILTIN
    #: retention of the connector log groups the builtin engine creates (the template's
    #: LogRetentionDays); unset: they keep their entries for ever, as CloudWatch's default
    log_retention_days: Annotated[Count | None, variable("LOG_RETENTION_DAYS")] = None
    region: Annotated[str, variable(*REGION)] = DEFAULT_REGION
    #: set only by the local stack (moto); in AWS the SDK finds its endpoints itself
    endpoint_url: Annotated[str | None, variable("AWS_ENDPOINT_URL")] = None

    @property
    def retrievals_uri(self) -> str:
        """Where the jobs file is: RETRIEVALS_URI, or next to the feeds in the landing bucket."""
        return self.retrievals_uri_setting or f"s3://{self.bucket}/{RETRIEVALS_KEY}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConnectorSettings:
        """Read and check the variables the template sets; every bad one is reported."""
        return read_env(cls, env)


def record_from_event(event: Mapping[str, Any]) -> FileRecord:
    """An EventBridge ``SFTP Connector File …`` event → the file's final record."""
    detail_type = str(event.get("detail-type", ""))
    detail = event.get("detail")
    if not detail_type.startswith("SFTP Connector File ") or not isinstance(detail, dict):
        raise InvalidEventError(f"not an SFTP connector file event: {detail_type!r}")
    try:
        operation = detail["operation"]
        dir_field = "local-directory-path" if operation == "RETRIEVE" else "remote-directory-path"
        resources = event.get("resources") or [""]
        location = detail.get("local-file-location") or {}
        return FileRecord(
            operation=operation,
            connector_id=detail["connector-id"],
            connector_arn=resources[0],
            account_id=str(event.get("account", "")),
            transfer_id=detail["transfer-id"],
            url=detail.get("url", ""),
            file_path=detail["file-path"],
            directory_field=dir_field,
            directory=detail.get(dir_field, ""),
            file_transfer_id=detail.get("file-transfer-id", ""),
            status=FileTransferStatus(detail["status-code"]),
            failure_code=detail.get("failure-code"),
            failure_message=detail.get("failure-message"),
            start_time=detail.get("start-timestamp"),
            end_time=detail.get("end-timestamp"),
            bytes=int(detail.get("bytes") or 0),
            bucket=location.get("bucket"),
            key=location.get("key"),
        )
    except (KeyError, ValueError) as exc:
        raise InvalidEventError(f"connector event is missing or has a bad field: {exc}") from exc


def consume_status_event(
    event: Mapping[str, Any], store: StatusStore, api: ConnectorApi | None, ports: JobPorts
) -> dict[str, Any]:
    """Store the file's final status and settle its retrieval claim (idempotent).

    ``api`` runs the claim's after-success action (boto3's ``transfer`` client in managed
    mode); None (the builtin engine, which this function does not ship) leaves it pending for
    the job's next retrieve run (:func:`connectors.claims.settle`).
    """
    record = record_from_event(event)
    store.save(record)
    settled = settle(
        api,
        ports,
        connector_id=record.connector_id,
        path=record.file_path,
        transfer_id=record.transfer_id,
        result=record.result(),
    )
    return {
        "transfer-id": record.transfer_id,
        "file-path": record.file_path,
        "status-code": record.status.value,
        "settled": settled,
    }


def report_json(reports: list[JobReport]) -> str:
    """A compact JSON summary for logs and the function's response."""
    return json.dumps([r.to_json() for r in reports], sort_keys=True)
