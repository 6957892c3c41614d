"""The chunk message that fanout sends and the processor consumes (JSON on SQS)."""

from __future__ import annotations

import json
from typing import Any

from msgspec import Struct
from msgspec.structs import asdict

from ingest.errors import InvalidEventError

SCHEMA_VERSION = 1
#: Fields added after schema v1 first shipped: messages already queued may lack them.
_OPTIONAL = frozenset({"ingestion"})


class ChunkMessage(Struct, frozen=True):
    """One chunk of one version of a landed file."""

    bucket: str
    key: str
    #: the ETag of the object version the chunk belongs to: the ledger's identity of a file
    version: str
    version_id: str | None
    feed: str
    index: int
    chunks: int
    start: int
    end: int
    first_line: int
    compressed: bool
    #: the ingestion of ``version`` the chunk belongs to ("" in messages from before ids)
    ingestion: str = ""

    @property
    def source_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def ingestion_id(self) -> str | None:
        """The ingestion, or None for a message from before ingestion ids."""
        return self.ingestion or None

    def to_body(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, text: str) -> ChunkMessage:
        """Parse a message body, with a clear error for anything malformed."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise InvalidEventError(f"chunk message is not JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("v") != SCHEMA_VERSION:
            raise InvalidEventError(f"not a chunk message of schema v{SCHEMA_VERSION}")
        names = set(cls.__struct_fields__)
        missing = sorted(names - set(data) - _OPTIONAL)
        if missing:
            raise InvalidEventError(f"chunk message lacks {missing}")
        try:
            msg = cls(**{k: data[k] for k in names if k in data})
        except TypeError as exc:
            raise InvalidEventError(f"malformed chunk message: {exc}") from exc
        if not (0 <= msg.start <= msg.end and 0 <= msg.index < msg.chunks and msg.first_line >= 1):
            raise InvalidEventError(f"chunk message has an impossible range: {data}")
        return msg
