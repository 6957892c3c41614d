"""Publishing a feeds file: validated, then uploaded with its compiled form next to it.

Only the CLI (``ingest feeds push``), the local stack and tests publish; the functions read the
compiled form (:mod:`ingest.adapters.feeds_source`) and never import this module, which needs
the schema library and PyYAML (:mod:`ingest.domain.feeds`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ingest.domain.feed_codec import compiled_location, encode_feeds
from ingest.domain.feed_types import FeedSet
from ingest.domain.feeds import parse_feeds
from ingest.errors import ConfigError
from ingest.shared.uris import parse_s3_uri


def publish_feeds(s3: Any, uri: str, text: str, *, source: str | None = None) -> FeedSet:
    """Validate the feeds file ``text`` (problems name ``source``, by default ``uri``) and put
    it at ``uri`` (``s3://bucket/key``), and its compiled form next to it. Nothing is uploaded
    when the file is invalid. The compiled form is written last: the functions read only it."""
    feeds = parse_feeds(text, source=source or uri)
    try:
        where = parse_s3_uri(uri)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    compiled = encode_feeds(msgspec.structs.replace(feeds, source=uri))
    s3.put_object(
        Bucket=where.bucket, Key=where.key, Body=text.encode(), ContentType="application/yaml"
    )
    s3.put_object(
        Bucket=where.bucket,
        Key=compiled_location(where.key),
        Body=compiled,
        ContentType="application/json",
    )
    return feeds
