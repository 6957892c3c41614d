"""Compiled feeds: a validated :class:`FeedSet` as JSON, and back, for the functions.

The feeds file is YAML and is validated completely with pydantic (:mod:`ingest.domain.feeds`)
when it is published (``ingest feeds push``). Publishing also writes this compiled form next to
it (``config/feeds.yaml`` → ``config/feeds.json``): the validated feeds, every default filled in,
as msgspec encodes the feed types. The functions read only the compiled form, decoded by msgspec
straight into the feed types (frozen msgspec Structs), so no function imports pydantic or PyYAML at
cold start (docs/benchmarks.md, "Packages and cold imports"). Decoding still checks every field's
type, so a hand-edited or truncated document is a clear ConfigError, not a wrong feed.

The document: ``{"compiled_feeds": 1, "source": "<the feeds file>", "feeds": [...]}``. A
document of another ``compiled_feeds`` version is refused with what to do about it.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

import msgspec
from msgspec import Struct

from ingest.domain.feed_types import Feed, FeedSet
from ingest.errors import ConfigError

#: The compiled document's format; bump it when the feed types change incompatibly.
COMPILED_VERSION = 1
#: Source suffixes replaced by ``.json`` in the compiled document's name.
_SOURCE_SUFFIXES = (".yaml", ".yml")


class _Document(Struct, frozen=True):
    compiled_feeds: int
    feeds: tuple[Feed, ...]
    source: str = "<feeds>"


def compiled_location(location: str) -> str:
    """Where the compiled form of the feeds file at ``location`` (a URI, a key or a path) is:
    next to it, ``.yaml``/``.yml`` replaced by ``.json`` (a ``.json`` location is its own)."""
    stem, suffix = posixpath.splitext(location)
    if suffix.lower() == ".json":
        return location
    return (stem if suffix.lower() in _SOURCE_SUFFIXES else location) + ".json"


def encode_feeds(feeds: FeedSet) -> bytes:
    """The compiled document of validated ``feeds``."""
    document = _Document(COMPILED_VERSION, feeds.feeds, feeds.source)
    return msgspec.json.encode(document, enc_hook=_encode_value)


def decode_feeds(data: bytes | str, *, source: str) -> FeedSet:
    """The feeds of a compiled document; a ConfigError names ``source`` and what is wrong."""
    try:
        version = msgspec.json.decode(data, type=_Version).compiled_feeds
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"not a compiled feeds document: {exc}", source=source) from None
    if version != COMPILED_VERSION:
        raise ConfigError(
            f"compiled feeds version {version}, this version of sftp-ingest reads "
            f"{COMPILED_VERSION}: publish the feeds file again with 'ingest feeds push FILE'",
            source=source,
        )
    try:
        document = msgspec.json.decode(data, type=_Document, dec_hook=_decode_value)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"malformed compiled feeds: {exc}", source=source) from None
    return FeedSet(document.feeds, source=document.source)


class _Version(Struct, frozen=True):
    compiled_feeds: int


# msgspec's extension hooks, called for the one type of the feed types msgspec does not encode
# or decode itself: the feed's compiled key pattern. Any other type reaching them means a feed
# type gained a field the compiled form cannot carry: a programming error, not bad input.


def _encode_value(value: Any) -> Any:
    if isinstance(value, re.Pattern):
        return value.pattern
    raise TypeError(f"the compiled feeds cannot carry a {type(value).__name__}")


def _decode_value(kind: Any, value: Any) -> Any:
    if kind is not re.Pattern and getattr(kind, "__origin__", None) is not re.Pattern:
        raise TypeError(f"the compiled feeds cannot carry a {kind!r}")
    if not isinstance(value, str):
        raise msgspec.ValidationError(f"expected a pattern string, got {value!r}")
    try:
        return re.compile(value)
    except re.error as exc:
        raise msgspec.ValidationError(f"bad pattern {value!r}: {exc}") from None
