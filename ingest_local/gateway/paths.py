"""THE mapping from a client's SFTP path to an S3 key under the user's logical root.

Every path a client sends goes through :func:`resolve` and nowhere else. The rules follow
Transfer Family's logical home directories (``/`` is the user's root) and are strict on
purpose: anything that tries to leave the root is refused rather than silently clamped, so
the attempt is visible in the logs and to the client.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import asyncssh

#: S3's limit on a key's length in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: Longest name of one path component (the common file-system limit; S3 has none of its own).
MAX_NAME_BYTES = 255
#: Longest path a client may send at all, before any parsing.
MAX_PATH_BYTES = 4096
#: Unicode categories refused in names: control (C0, DEL, C1 such as U+0085), format (bidi
#: overrides such as U+202E, zero-width U+200B-U+200D, U+2060, U+FEFF), line and paragraph
#: separators (U+2028, U+2029), surrogates, private use, and unassigned code points. They
#: truncate keys in other tools, break log lines, or make a name display as another.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


class PathRefused(asyncssh.SFTPPermissionDenied):
    """A client path was refused; ``reason`` says why (for the audit log)."""

    def __init__(self, path: bytes, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"permission denied: {reason}")


@dataclass(frozen=True)
class LogicalRoot:
    """Where a user's ``/`` lives: ``s3://bucket/prefix/``."""

    bucket: str
    prefix: str  # e.g. "inbound/acme", never with a trailing slash

    @property
    def physical_top(self) -> str:
        """The first component of the physical prefix (``inbound``)."""
        return self.prefix.split("/", 1)[0]


@dataclass(frozen=True)
class ResolvedPath:
    """A client path after validation: its logical form and its S3 key."""

    root: LogicalRoot
    parts: tuple[str, ...]

    @property
    def is_root(self) -> bool:
        return not self.parts

    @property
    def key(self) -> str:
        """The object key (for the root: the prefix itself, without a slash)."""
        return "/".join((self.root.prefix, *self.parts))

    @property
    def dir_prefix(self) -> str:
        """The key prefix of the entries below this path (``key + '/'``)."""
        return self.key + "/"

    @property
    def logical(self) -> str:
        """The path as the client sees it, always absolute."""
        return "/" + "/".join(self.parts)

    @property
    def physical(self) -> str:
        """``/bucket/key``: the form Transfer Family logs and events use."""
        return f"/{self.root.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""


def resolve(root: LogicalRoot, path: bytes | str) -> ResolvedPath:
    """Map a client path (absolute or relative to ``/``) to a key under ``root``.

    Raises :class:`PathRefused` (an ``SFTPPermissionDenied``) for: paths that are not
    UTF-8; NUL, control, format (bidi, zero-width), separator, private-use or unassigned
    characters (:data:`REFUSED_CATEGORIES`); backslashes; ``..`` that would climb above the
    root; paths that name the physical layout (the bucket or the top-level ``inbound`` prefix)
    instead of the logical one; names over 255 bytes; keys over S3's 1024-byte limit.
    """
    raw = path.encode("utf-8", "surrogateescape") if isinstance(path, str) else bytes(path)
    if len(raw) > MAX_PATH_BYTES:
        raise PathRefused(raw, f"path longer than {MAX_PATH_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PathRefused(raw, "path is not valid UTF-8") from exc
    bad = next((ch for ch in text if unicodedata.category(ch) in REFUSED_CATEGORIES), None)
    if bad is not None:
        raise PathRefused(
            raw,
            f"path contains a control, invisible or unassigned character (U+{ord(bad):04X})",
        )
    # A backslash is a path separator to Windows clients and a classic traversal vector.
    if "\\" in text:
        raise PathRefused(raw, "path contains a backslash")
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathRefused(raw, "path climbs above the user's root")
            parts.pop()
            continue
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise PathRefused(raw, f"a name is longer than {MAX_NAME_BYTES} bytes")
        parts.append(part)
    if parts and parts[0] in (root.bucket, root.physical_top):
        # The client is addressing the physical layout (/bucket/inbound/other/...): that is
        # either a misconfigured client or a probe for another partner's prefix.
        raise PathRefused(raw, "physical bucket paths are not addressable; use logical paths")
    resolved = ResolvedPath(root, tuple(parts))
    if len(resolved.key.encode("utf-8")) > MAX_KEY_BYTES:
        raise PathRefused(raw, f"the object key would exceed {MAX_KEY_BYTES} bytes")
    return resolved
