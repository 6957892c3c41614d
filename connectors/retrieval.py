"""The retrieve function's core: on its schedule, run every job of ``retrievals.yaml``.

Apart from :mod:`connectors.usecases` because reading the jobs file needs PyYAML and pydantic
(:mod:`connectors.jobfile`), which the transfer-status function neither imports nor ships.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors.jobfile import load_jobs
from connectors.jobs import ConnectorApi, JobPorts, JobReport, run_jobs
from ingest.adapters.sdk import is_not_found, unavailable
from ingest.errors import ConfigError
from ingest.shared.uris import parse_s3_uri


def read_jobs_file(s3: Any, uri: str) -> str | None:
    """The text of ``s3://bucket/key``, or None when there is no such file (no jobs)."""
    try:
        where = parse_s3_uri(uri)
    except ValueError as exc:
        raise ConfigError(f"RETRIEVALS_URI: {exc}") from None
    try:
        body = s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        if is_not_found(exc):
            return None
        raise unavailable(exc, "s3", "GetObject", uri) from exc
    return str(body.decode("utf-8"))


def retrieve(api: ConnectorApi, ports: JobPorts, retrievals_uri: str) -> list[JobReport]:
    """One scheduled run: every configured job."""
    text = read_jobs_file(ports.s3, retrievals_uri)
    if text is None:
        return []
    return run_jobs(api, ports, load_jobs(text, retrievals_uri))
