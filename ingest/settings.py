"""One settings class per function, read once at cold start from its environment.

The core never reads ``os.environ``; handlers build these from it and pass values in. Each
field names the environment variable it is read from (:func:`variable`); its type says what
the text must be, and msgspec (the functions' schema library) converts and checks it against
that type. An empty variable counts as unset, and every bad or missing variable is reported at
once (a :class:`SettingsError` naming each variable): each field is converted on its own, since
msgspec stops at a model's first error.

Not pydantic, on purpose: what a function imports at cold start is on every cold start's bill,
and importing pydantic alone was about 250 ms of each core function's (docs/benchmarks.md,
"Packages and cold imports"). pydantic checks the files people write (feeds, jobs) in the CLI,
where every problem of a file at once is worth its import.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Self, TypeVar

import msgspec

from ingest.domain.chunks import DEFAULT_CHUNK_SIZE
from ingest.errors import SettingsError

MIB = 1024 * 1024

#: AWS_REGION as Lambda sets it, AWS_DEFAULT_REGION as the SDK also reads it
REGION = ("AWS_REGION", "AWS_DEFAULT_REGION")

Count = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]

S = TypeVar("S", bound=msgspec.Struct)


class Variable(msgspec.Struct, frozen=True):
    """Where a setting comes from: the first of ``names`` that is set, its text given to
    ``before`` (if any) and then converted to the field's type."""

    names: tuple[str, ...]
    before: Callable[[str], str] | None = None


def variable(*names: str, before: Callable[[str], str] | None = None) -> Variable:
    """A settings field's source, in its annotation: ``bucket: Annotated[str,
    variable("LANDING_BUCKET")]`` is read from the first set variable of ``names``, required
    unless the field has a default. ``before`` may rewrite the text first, raising ValueError
    with a phrase ("must be one of …") that the error completes with the variable and its
    text. A field whose type is itself a settings class is a group, read from the same
    environment."""
    return Variable(names, before)


def read_env(cls: type[S], env: Mapping[str, str]) -> S:
    """``cls`` from the environment ``env``; a SettingsError lists every bad variable."""
    values, problems = _read_fields(cls, {k: v.strip() for k, v in env.items() if v.strip()})
    if problems:
        raise SettingsError.collect(problems)
    return cls(**values)


def _read_fields(
    cls: type[msgspec.Struct], env: Mapping[str, str]
) -> tuple[dict[str, Any], list[SettingsError]]:
    values: dict[str, Any] = {}
    problems: list[SettingsError] = []
    types = typing.get_type_hints(cls, include_extras=True)
    for spec in msgspec.structs.fields(cls):
        kind = types[spec.name]
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            nested, nested_problems = _read_fields(kind, env)
            problems += nested_problems
            values[spec.name] = None if nested_problems else kind(**nested)
            continue
        source = next((m for m in typing.get_args(kind)[1:] if isinstance(m, Variable)), None)
        if source is None:  # a programming error: every field names its variable
            raise TypeError(f"{cls.__name__}.{spec.name} names no variable(...) in its type")
        name = next((n for n in source.names if n in env), None)
        if name is None:
            if spec.required:
                first = source.names[0]
                problems.append(
                    SettingsError(f"environment variable {first} is required", field=first)
                )
            continue
        try:
            text = source.before(env[name]) if source.before else env[name]
            values[spec.name] = msgspec.convert(text, kind, strict=False)
        except (ValueError, msgspec.ValidationError) as exc:
            given = repr(env[name])
            given = given if len(given) <= 60 else given[:57] + "..."
            problems.append(SettingsError(f"{name} {_phrase(exc)}, got {given}", field=name))
    return values, problems


#: compiled on first use (re caches it), not at a cold start
_AT_LEAST = r"^Expected `int` >= (-?\d+)$"


def _phrase(exc: Exception) -> str:
    """A conversion error in the words of our docs (anything else keeps msgspec's sentence)."""
    if not isinstance(exc, msgspec.ValidationError):
        return str(exc)  # our own ``before`` checks' phrases
    message = str(exc)
    if message.startswith("Expected `int`, got"):
        return "must be a whole number"
    if m := re.match(_AT_LEAST, message):
        return f"must be at least {m.group(1)}"
    return message[0].lower() + message[1:]


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What every ingestion function reads."""

    bucket: Annotated[str, variable("LANDING_BUCKET")]
    ledger_table: Annotated[str, variable("LEDGER_TABLE")]
    feeds_uri: Annotated[str, variable("FEEDS_URI")]
    region: Annotated[str | None, variable(*REGION)] = None
    #: set only by the local stack (moto); in AWS the SDK finds its endpoints itself
    endpoint_url: Annotated[str | None, variable("AWS_ENDPOINT_URL")] = None


class _FunctionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A function's settings: its own variables and, in ``common``, the shared ones."""

    common: CommonSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """Read and check the variables the template sets."""
        return read_env(cls, env)


class FanoutSettings(_FunctionSettings, frozen=True, kw_only=True):
    queue_url: Annotated[str, variable("INGEST_QUEUE_URL")]
    chunk_size_mib: Annotated[Count, variable("CHUNK_SIZE_MIB")] = DEFAULT_CHUNK_SIZE // MIB
    #: bytes, for tests that need small chunks; wins over CHUNK_SIZE_MIB
    chunk_size_bytes: Annotated[Count | None, variable("CHUNK_SIZE_BYTES")] = None
    #: RoleId of the Transfer Family users' role: objects it writes wait for the
    #: server's upload-completed event (Transfer writes partial uploads to S3).
    transfer_role_id: Annotated[str | None, variable("TRANSFER_ROLE_ID")] = None
    #: The Transfer Family server whose workflows' PGP secrets decrypt ``.pgp`` files
    #: (``aws/transfer/<server id>/<partner>``).
    transfer_server_id: Annotated[str | None, variable("TRANSFER_SERVER_ID")] = None

    @property
    def chunk_size(self) -> int:
        return self.chunk_size_bytes or self.chunk_size_mib * MIB


class ProcessorSettings(_FunctionSettings, frozen=True, kw_only=True):
    records_table: Annotated[str, variable("RECORDS_TABLE")]
    max_receive_count: Annotated[Count, variable("MAX_RECEIVE_COUNT")] = 5
    #: batch_writer threads per chunk
    write_threads: Annotated[Count, variable("WRITE_THREADS")] = 4
    #: first retry delay of a failed chunk message (doubling per delivery); 0 leaves the
    #: queue's visibility timeout in charge
    retry_backoff_seconds: Annotated[NonNegative, variable("RETRY_BACKOFF_SECONDS")] = 0
    #: the queue the messages come from (for ChangeMessageVisibility)
    queue_url: Annotated[str | None, variable("INGEST_QUEUE_URL")] = None


class EventSenderSettings(_FunctionSettings, frozen=True, kw_only=True):
    """The shared settings and the EventBridge bus the function sends its events to
    (OutcomesFunction: the files' final statuses; ExpectedFilesFunction: MISSING and LATE)."""

    #: the account's default bus unless told
    event_bus: Annotated[str, variable("EVENT_BUS_NAME")] = "default"
