"""``retrievals.yaml``: the scheduled retrieval jobs, parsed and validated.

A job names a connector, a remote directory, a filename pattern, the landing prefix of a feed
and what to do with a remote file once it is safely in S3 (``leave``, ``delete`` or
``move_to: DIR``). See docs/connectors.md for the format. The file is checked with pydantic,
and every problem is reported at once, each naming the file, the job and the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from pydantic_core import ErrorDetails

from connectors.job_types import RetrievalJob
from ingest.domain.config_files import EntryKind, entry_label, validate_entries
from ingest.errors import ConfigError

_SCHEMA = ConfigDict(extra="forbid", strict=True, frozen=True)
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _MoveTo(BaseModel):
    model_config = _SCHEMA
    move_to: _Text


class _JobSchema(BaseModel):
    model_config = _SCHEMA
    name: _Text
    connector_id: _Text
    remote_directory: _Text
    pattern: str = "*"
    destination: _Text
    after_success: Literal["leave", "delete"] | _MoveTo = "leave"

    @field_validator("destination")
    @classmethod
    def _a_feed_prefix(cls, value: str) -> str:
        value = value.strip("/")
        if not value.startswith("inbound/"):
            raise ValueError("must be a feed prefix under inbound/ (e.g. inbound/acme/orders)")
        return value

    def job(self) -> RetrievalJob:
        move = self.after_success if isinstance(self.after_success, _MoveTo) else None
        return RetrievalJob(
            name=self.name,
            connector_id=self.connector_id,
            remote_directory=self.remote_directory,
            destination=self.destination,
            pattern=self.pattern,
            after_success="move" if move else str(self.after_success),
            move_to=move.move_to if move else None,
        )


class _JobsSchema(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)
    retrievals: list[_JobSchema]


JOBS = EntryKind(
    list_key="retrievals",
    noun="job",
    duplicate="job names must be unique (jobs #{first} and #{second})",
)


def load_jobs(text: str, source: str = "retrievals.yaml") -> list[RetrievalJob]:
    """Parse and validate ``retrievals.yaml``; every problem is reported (a ConfigError whose
    ``errors`` lists them), each naming the file, the job and the field."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from exc
    schema = validate_entries(_JobsSchema, data, JOBS, source, _problem)
    return [job.job() for job in schema.retrievals]


def _problem(error: ErrorDetails, entries: Any, source: str) -> tuple[int, ConfigError]:
    """One of pydantic's errors as ours: which job, which field, what is wrong."""
    loc = error["loc"]
    if len(loc) < 2 or loc[0] != "retrievals":
        return -1, ConfigError("must have a top-level 'retrievals:' list", source=source)
    index, path = int(loc[1]), [str(part) for part in loc[2:]]
    job = entry_label(entries, index)
    if not path:
        message = ConfigError.describe(error, "each retrieval")
        return index, ConfigError(message, source=source, job=job)
    field = path[0]
    if error["type"] == "extra_forbidden" and len(path) == 1:
        known = ", ".join(_JobSchema.model_fields)
        message = f"unknown key {field!r} (known keys: {known})"
    elif field == "after_success":
        message = "must be leave, delete or {move_to: DIR}"
    else:
        message = ConfigError.describe(error, repr(field))
    return index, ConfigError(message, source=source, job=job, field=field)
