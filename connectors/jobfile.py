"""``retrievals.yaml``: the scheduled retrieval jobs, parsed and validated.

A job names a connector, a remote directory, a filename pattern, the landing prefix of a feed
and what to do with a remote file once it is safely in S3 (``leave``, ``delete`` or
``move_to: DIR``). See docs/connectors.md for the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from ingest.errors import ConfigError


@dataclass(frozen=True)
class RetrievalJob:
    """One configured retrieval."""

    name: str
    connector_id: str
    remote_directory: str
    destination: str
    pattern: str = "*"
    after_success: str = "leave"  # leave | delete | move
    move_to: str | None = None


def load_jobs(text: str, source: str = "retrievals.yaml") -> list[RetrievalJob]:
    """Parse and validate ``retrievals.yaml``; errors name the file, job and field."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from exc
    entries = data.get("retrievals") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError("must have a top-level 'retrievals:' list", source=source)
    jobs: list[RetrievalJob] = []
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = str(name or f"#{i + 1}")
        if not isinstance(entry, dict):
            raise ConfigError("each retrieval must be a mapping", source=source, feed=where)

        def need(key: str, entry: dict[str, Any] = entry, where: str = where) -> str:
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    "is required (a non-empty string)", source=source, feed=where, field=key
                )
            return value.strip()

        unknown = set(entry) - {
            "name",
            "connector_id",
            "remote_directory",
            "pattern",
            "destination",
            "after_success",
        }
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}", source=source, feed=where)
        after = entry.get("after_success", "leave")
        move_to = None
        if isinstance(after, dict) and set(after) == {"move_to"}:
            move_to, after = str(after["move_to"]), "move"
        elif after not in ("leave", "delete"):
            raise ConfigError(
                "must be leave, delete or {move_to: DIR}",
                source=source,
                feed=where,
                field="after_success",
            )
        destination = need("destination").strip("/")
        if not destination.startswith("inbound/"):
            raise ConfigError(
                "must be a feed prefix under inbound/ (e.g. inbound/acme/orders)",
                source=source,
                feed=where,
                field="destination",
            )
        jobs.append(
            RetrievalJob(
                name=need("name"),
                connector_id=need("connector_id"),
                remote_directory=need("remote_directory"),
                destination=destination,
                pattern=str(entry.get("pattern", "*")),
                after_success=str(after),
                move_to=move_to,
            )
        )
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ConfigError("job names must be unique", source=source)
    return jobs
