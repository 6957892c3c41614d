"""One validated settings model per function, read once at cold start from its environment.

The core never reads ``os.environ``; handlers build these from it and pass values in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ingest.domain.chunks import DEFAULT_CHUNK_SIZE
from ingest.errors import SettingsError

MIB = 1024 * 1024


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required", field=name)
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}", field=name) from None
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}", field=name)
    return value


@dataclass(frozen=True)
class CommonSettings:
    bucket: str
    ledger_table: str
    feeds_uri: str
    region: str | None
    endpoint_url: str | None


def _common(env: Mapping[str, str]) -> CommonSettings:
    return CommonSettings(
        bucket=_required(env, "LANDING_BUCKET"),
        ledger_table=_required(env, "LEDGER_TABLE"),
        feeds_uri=_required(env, "FEEDS_URI"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        # Set only by the local stack (moto); in AWS the SDK finds its endpoints itself.
        endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
    )


@dataclass(frozen=True)
class FanoutSettings:
    common: CommonSettings
    queue_url: str
    chunk_size: int
    #: RoleId of the Transfer Family users' role: objects it writes wait for the
    #: server's upload-completed event (Transfer writes partial uploads to S3).
    transfer_role_id: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FanoutSettings:
        return cls(
            common=_common(env),
            queue_url=_required(env, "INGEST_QUEUE_URL"),
            chunk_size=_positive_int(env, "CHUNK_SIZE_MIB", DEFAULT_CHUNK_SIZE // MIB) * MIB
            if "CHUNK_SIZE_BYTES" not in env
            else _positive_int(env, "CHUNK_SIZE_BYTES", DEFAULT_CHUNK_SIZE),
            transfer_role_id=env.get("TRANSFER_ROLE_ID") or None,
        )


@dataclass(frozen=True)
class ProcessorSettings:
    common: CommonSettings
    records_table: str
    max_receive_count: int
    #: batch_writer threads per chunk
    write_threads: int
    #: first retry delay of a failed chunk message (doubling per delivery); 0 leaves the
    #: queue's visibility timeout in charge
    retry_backoff_seconds: int
    #: the queue the messages come from (for ChangeMessageVisibility)
    queue_url: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessorSettings:
        backoff = env.get("RETRY_BACKOFF_SECONDS", "").strip()
        if backoff and not backoff.isdigit():
            raise SettingsError(
                f"RETRY_BACKOFF_SECONDS must be a whole number, got {backoff!r}",
                field="RETRY_BACKOFF_SECONDS",
            )
        return cls(
            common=_common(env),
            records_table=_required(env, "RECORDS_TABLE"),
            max_receive_count=_positive_int(env, "MAX_RECEIVE_COUNT", 5),
            write_threads=_positive_int(env, "WRITE_THREADS", 4),
            retry_backoff_seconds=int(backoff) if backoff else 0,
            queue_url=env.get("INGEST_QUEUE_URL") or None,
        )
