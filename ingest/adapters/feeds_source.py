"""Where functions get their feeds: the compiled feeds in S3 (``s3://…``) or on disk, cached.

Keeping feeds in the landing bucket (``config/feeds.yaml``) lets an operator change them with
``ingest feeds push`` without redeploying the functions. Push validates the file and writes its
compiled form next to it (``config/feeds.json``, :mod:`ingest.domain.feed_codec`); functions
read only that, so they import no YAML or schema library (publishing is
:mod:`ingest.adapters.feeds_publisher`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ingest.adapters.s3 import S3Store
from ingest.domain.feed_codec import compiled_location, decode_feeds
from ingest.domain.feed_types import FeedSet
from ingest.errors import ConfigError, ObjectNotFoundError
from ingest.shared.uris import parse_s3_uri

DEFAULT_TTL_SECONDS = 60.0


class CachedFeeds:
    """Loads feeds on first use and again after ``ttl`` seconds when they changed.

    ``uri`` is the feeds file's (``FEEDS_URI``); what is read is its compiled form next to it.
    """

    def __init__(
        self,
        uri: str,
        store: S3Store | None,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = uri
        self._uri = compiled_location(uri)
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._feeds: FeedSet | None = None
        self._tag: str | None = None
        self._loaded_at = 0.0

    def __call__(self) -> FeedSet:
        now = self._clock()
        if self._feeds is None or now - self._loaded_at >= self._ttl:
            text, tag = self._read()
            if self._feeds is None or tag != self._tag:
                self._feeds = decode_feeds(text, source=self._uri)
                self._tag = tag
            self._loaded_at = now
        return self._feeds

    def _read(self) -> tuple[str, str]:
        if self._uri.startswith("s3://"):
            if self._store is None:
                raise ConfigError(f"feeds at {self._uri} need an S3 client")
            try:
                where = parse_s3_uri(self._uri)
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
            try:
                return self._store.read_text(where.bucket, where.key)
            except ObjectNotFoundError as exc:
                raise ConfigError(
                    f"no compiled feeds at {self._uri}: publish the feeds file "
                    f"({self._source}) with 'ingest feeds push FILE'"
                ) from exc
        path = Path(self._uri.removeprefix("file://"))
        try:
            stat = path.stat()
            return path.read_text(encoding="utf-8"), f"{stat.st_mtime_ns}:{stat.st_size}"
        except OSError as exc:
            raise ConfigError(f"cannot read feeds: {exc}", source=str(path)) from exc
