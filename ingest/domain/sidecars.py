"""Checksum sidecars and done markers: files that confirm another file (feed ``wait_for``).

* ``<key>.sha256`` / ``<key>.md5``: the first hex token of its text is the digest of ``<key>``
  (``sha256sum`` / ``md5sum`` output, or the bare digest);
* ``<key>.done`` or ``<key without extension>.done``: ``<key>`` is complete (``orders.csv.done``
  or ``orders.done`` for ``orders.csv``).

Only objects under a partner's prefix (``inbound/<partner>/…``) are sidecars. They are never
ingested as data: each gets a ledger entry of its own (``IGNORED``, with ``sidecar_for`` and
a reason saying what it did), and a note beside the file it is about, so that a sidecar that
lands first is remembered until its file lands (:mod:`ingest.usecases.sidecars`).
"""

from __future__ import annotations

import posixpath
import re
from enum import StrEnum

from msgspec import Struct

from ingest.domain.digests import MD5, SHA256
from ingest.domain.feed_types import WaitFor

#: The reasons of a file waiting in RECEIVED for its sidecar or marker.
AWAITING = {
    WaitFor.CHECKSUM: "awaiting checksum",
    WaitFor.DONE: "awaiting done marker",
}
#: The reason of a waiting file being released (a transient RECEIVED state).
RELEASING = "releasing: confirmed"

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DIGEST_LENGTH = {SHA256: 64, MD5: 32}


class SidecarKind(StrEnum):
    SHA256 = SHA256
    MD5 = MD5
    DONE = "done"

    @property
    def is_checksum(self) -> bool:
        return self is not SidecarKind.DONE


class Sidecar(Struct, frozen=True):
    """A landed sidecar or marker, and the key it notes itself under (``subject``).

    A checksum's subject is the file's key; a done marker's is its name without ``.done``,
    which is the file's key or the file's key without its extension."""

    key: str
    kind: SidecarKind
    subject: str


class SidecarNote(Struct, frozen=True):
    """What the ledger remembers of a sidecar beside its subject (its digest, for a checksum)."""

    subject: str
    kind: SidecarKind
    sidecar_key: str
    etag: str
    #: the digest the sidecar declares (lower-case hex); None for a marker
    declared: str | None = None
    #: why the sidecar cannot be used (not a digest), or None
    problem: str | None = None


class WaitingFile(Struct, frozen=True):
    """A file held in RECEIVED until its sidecar or marker lands, as the sweep sees it."""

    key: str
    version: str
    ingestion: str
    feed: str
    wait_for: WaitFor
    since: float
    deadline: float


def parse_sidecar(key: str) -> Sidecar | None:
    """The sidecar or marker ``key`` is, by its suffix (any case), or None."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "inbound" or not parts[1]:
        return None
    stem, suffix = posixpath.splitext(key)
    kind = {".sha256": SidecarKind.SHA256, ".md5": SidecarKind.MD5, ".done": SidecarKind.DONE}
    found = kind.get(suffix.lower())
    if found is None or not posixpath.basename(stem):
        return None
    return Sidecar(key, found, stem)


def subjects_of(key: str) -> tuple[str, ...]:
    """The subjects under which a file's sidecars and markers are noted: its key, and (for a
    done marker) its key without the extension."""
    stem, extension = posixpath.splitext(key)
    return (key, stem) if extension and posixpath.basename(stem) else (key,)


def confirms(note: SidecarNote, key: str, wait_for: WaitFor) -> bool:
    """Whether ``note`` confirms the file ``key`` for a feed waiting for ``wait_for``."""
    if note.kind.is_checksum:
        return note.subject == key and wait_for in (WaitFor.CHECKSUM, WaitFor.NONE)
    return wait_for is WaitFor.DONE and note.subject in subjects_of(key)


def declared_digest(kind: SidecarKind, text: str) -> tuple[str | None, str | None]:
    """The digest a checksum sidecar's text declares, and the problem when it has none.

    The first whitespace-separated token that is all hex digits is the digest
    (``sha256sum`` writes ``<digest>  <name>``; BSD's ``SHA256 (name) = <digest>`` works too)."""
    for token in text.split():
        if _HEX.match(token):
            want = _DIGEST_LENGTH[kind.value]
            if len(token) != want:
                return None, f"its first hex token has {len(token)} digits, not {want} ({kind})"
            return token.lower(), None
    return None, f"it holds no hex {kind} digest"


def human_duration(seconds: float) -> str:
    """``86400`` → ``24 h``, ``5400`` → ``90 min``, ``45`` → ``45 s``."""
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds)} s"


def timeout_reason(wait_for: WaitFor, timeout: float, key: str) -> str:
    """The FAILED reason of a file that waited longer than its feed's ``wait_timeout``."""
    if wait_for is WaitFor.CHECKSUM:
        wanted = f"{key}.sha256 or {key}.md5"
        return f"no checksum/done marker after {human_duration(timeout)} (expected {wanted})"
    stem = subjects_of(key)[-1]
    wanted = f"{key}.done" if stem == key else f"{key}.done or {stem}.done"
    return f"no checksum/done marker after {human_duration(timeout)} (expected {wanted})"


def mismatch_reason(sidecar_key: str, algorithm: str, declared: str, actual: str) -> str:
    """The FAILED reason of a file whose digest is not the one its sidecar declares."""
    return (
        f"checksum mismatch: {sidecar_key} declares {algorithm} {declared}, "
        f"the file's {algorithm} is {actual}"
    )
