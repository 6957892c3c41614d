"""``<state-dir>/endpoints.json``: how tools find a running local stack (docs/contracts.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec
from msgspec import Struct, field

from ingest.errors import ConfigError

ENDPOINTS_FILE = "endpoints.json"
DEFAULT_STATE_DIR = ".state"
#: the environment variable that names the state dir when --state-dir is not given
ENV_STATE_DIR = "INGEST_STATE_DIR"


def default_state_dir() -> Path:
    """Where the local stack keeps its state unless told: $INGEST_STATE_DIR, else ./.state."""
    return Path(os.environ.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR)


def found_state_dir() -> Path | None:
    """The state dir of a local stack to talk to when none is named: $INGEST_STATE_DIR, or
    ./.state when a stack runs there."""
    env_dir = os.environ.get(ENV_STATE_DIR)
    if env_dir:
        return Path(env_dir)
    if (Path(DEFAULT_STATE_DIR) / ENDPOINTS_FILE).exists():
        return Path(DEFAULT_STATE_DIR)
    return None


class SftpEndpoint(Struct):
    host: str
    port: int
    host_key_fingerprints: list[str] = field(default_factory=list)


class Endpoints(Struct):
    """The contents of ``endpoints.json``."""

    aws_endpoint_url: str
    region: str
    sftp: SftpEndpoint | None
    resources: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Endpoints:
        sftp = data.get("sftp")
        return cls(
            aws_endpoint_url=data["aws_endpoint_url"],
            region=data["region"],
            sftp=SftpEndpoint(**sftp) if sftp else None,
            resources=dict(data.get("resources", {})),
        )


def write_endpoints(state_dir: Path, endpoints: Endpoints) -> Path:
    """Write ``endpoints.json`` atomically (readers never see half a file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / ENDPOINTS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(endpoints.to_json(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_endpoints(state_dir: Path) -> Endpoints:
    """Read ``endpoints.json`` of a running local stack, with a clear error if absent."""
    path = state_dir / ENDPOINTS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no local stack found: {path} does not exist (start one with 'ingest up')"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return Endpoints.from_json(data)
