"""Envelopes: files that wrap other files (a zip archive, a PGP message).

An envelope is not ingested as records. Fanout opens it with the step its suffix names and
writes what it holds next to it, in the same S3 directory; those objects are then ingested by
their own S3 events like any upload. Each step is one ledger entry (the envelope's: EXPANDED,
DECRYPTED) that names what it wrote, and each output is linked back to its envelope, so
``ingest status`` shows the chain from what the partner sent to the records it produced.

Only objects under a partner's prefix (``inbound/<partner>/…``) are envelopes.
"""

from __future__ import annotations

import posixpath
from enum import StrEnum

from msgspec import Struct

from ingest.domain.feed_types import Feed, FeedSet, glob_to_regex


class EnvelopeKind(StrEnum):
    """What opens an envelope; its value is the status its ledger entry ends in."""

    ZIP = "EXPANDED"
    #: ``.pgp``, ``.gpg``, ``.asc``: decrypted to the key without the suffix
    PGP = "DECRYPTED"


#: suffix (lower case) → kind. A step not wired into fanout leaves the file to the feeds.
SUFFIXES: dict[str, EnvelopeKind] = {
    ".zip": EnvelopeKind.ZIP,
    ".pgp": EnvelopeKind.PGP,
    ".gpg": EnvelopeKind.PGP,
    ".asc": EnvelopeKind.PGP,
}

#: How many output keys an envelope's entry holds itself; the rest are ledger items of their
#: own (``OUTPUT#…``, :mod:`ingest.adapters.ledger_envelopes`), read by ``ingest status KEY``.
OUTPUT_KEYS_IN_ENTRY = 100


def envelope_kind(key: str) -> EnvelopeKind | None:
    """The envelope ``key`` is, by its suffix, when it is under a partner's prefix."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "inbound" or not parts[1]:
        return None
    _, suffix = posixpath.splitext(key.lower())
    return SUFFIXES.get(suffix)


def envelope_feed(feeds: FeedSet, key: str) -> Feed | None:
    """The feed whose options (``zip:``) apply to the envelope at ``key``.

    A feed that matches the key itself (``match: "inbound/{partner}/orders/*.zip"``) wins;
    else the first feed that owns the envelope's directory: whose ``match``, without its last
    segment, matches the directory (``inbound/{partner}/orders/*.csv`` owns
    ``inbound/acme/orders/``). None: the defaults apply.
    """
    for feed in feeds.feeds:
        if feed.pattern.fullmatch(key):
            return feed
    directory = posixpath.dirname(key)
    for feed in feeds.feeds:
        feed_dir = posixpath.dirname(feed.match)
        if feed_dir and glob_to_regex(feed_dir).fullmatch(directory):
            return feed
    return None


class EnvelopeSource(Struct, frozen=True):
    """The version of an envelope being opened (reads are pinned to it)."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
