"""One validated settings model per function, read once at cold start from its environment.

The core never reads ``os.environ``; handlers build these from it and pass values in. The
models are pydantic's: each field is read from the environment variable its alias names, an
empty variable counts as unset, and every bad or missing variable is reported at once (a
:class:`SettingsError` naming each variable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.domain.chunks import DEFAULT_CHUNK_SIZE
from ingest.errors import SettingsError

MIB = 1024 * 1024

#: Settings are the environment's: other variables are none of the model's business.
SETTINGS = ConfigDict(frozen=True, extra="ignore")

Required = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=1)]
#: AWS_REGION as Lambda sets it, AWS_DEFAULT_REGION as the SDK also reads it
REGION = AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")

M = TypeVar("M", bound=BaseModel)


def read_env(model: type[M], env: Mapping[str, str]) -> M:
    """``model`` from the environment ``env``; a SettingsError lists every bad variable."""
    values = {name: value.strip() for name, value in env.items() if value.strip()}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][-1])
            if error["type"] == "missing":
                message = f"environment variable {name} is required"
            else:
                message = SettingsError.describe(error, name)
            problems.append(SettingsError(message, field=name))
        raise SettingsError.collect(problems) from None


class CommonSettings(BaseModel):
    """What every ingestion function reads."""

    model_config = SETTINGS
    bucket: Required = Field(alias="LANDING_BUCKET")
    ledger_table: Required = Field(alias="LEDGER_TABLE")
    feeds_uri: Required = Field(alias="FEEDS_URI")
    region: str | None = Field(None, validation_alias=REGION)
    #: set only by the local stack (moto); in AWS the SDK finds its endpoints itself
    endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")


class _FunctionSettings(BaseModel):
    """A function's settings: its own variables and, in ``common``, the shared ones."""

    model_config = SETTINGS
    common: CommonSettings

    @model_validator(mode="before")
    @classmethod
    def _common_from_the_same_environment(cls, env: Any) -> Any:
        return {**env, "common": env} if isinstance(env, Mapping) else env

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """Read and check the variables the template sets."""
        return read_env(cls, env)


class FanoutSettings(_FunctionSettings):
    queue_url: Required = Field(alias="INGEST_QUEUE_URL")
    chunk_size_mib: Count = Field(DEFAULT_CHUNK_SIZE // MIB, alias="CHUNK_SIZE_MIB")
    #: bytes, for tests that need small chunks; wins over CHUNK_SIZE_MIB
    chunk_size_bytes: Count | None = Field(None, alias="CHUNK_SIZE_BYTES")
    #: RoleId of the Transfer Family users' role: objects it writes wait for the
    #: server's upload-completed event (Transfer writes partial uploads to S3).
    transfer_role_id: str | None = Field(None, alias="TRANSFER_ROLE_ID")
    #: The Transfer Family server whose workflows' PGP secrets decrypt ``.pgp`` files
    #: (``aws/transfer/<server id>/<partner>``).
    transfer_server_id: str | None = Field(None, alias="TRANSFER_SERVER_ID")

    @property
    def chunk_size(self) -> int:
        return self.chunk_size_bytes or self.chunk_size_mib * MIB


class ProcessorSettings(_FunctionSettings):
    records_table: Required = Field(alias="RECORDS_TABLE")
    max_receive_count: Count = Field(5, alias="MAX_RECEIVE_COUNT")
    #: batch_writer threads per chunk
    write_threads: Count = Field(4, alias="WRITE_THREADS")
    #: first retry delay of a failed chunk message (doubling per delivery); 0 leaves the
    #: queue's visibility timeout in charge
    retry_backoff_seconds: Annotated[int, Field(ge=0)] = Field(0, alias="RETRY_BACKOFF_SECONDS")
    #: the queue the messages come from (for ChangeMessageVisibility)
    queue_url: str | None = Field(None, alias="INGEST_QUEUE_URL")
