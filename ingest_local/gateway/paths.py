"""THE mapping from a client's SFTP path to an S3 key under the user's logical root.

Every path a client sends goes through :func:`resolve` and nowhere else. The rules follow
Transfer Family's logical home directories (``/`` is the user's root; further
``HomeDirectoryMappings`` entries such as ``/receipts`` are mounted over it, the longest
entry wins) and are strict on purpose: anything that tries to leave the root is refused
rather than silently clamped, so the attempt is visible in the logs and to the client.
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


#: What a user may do with the objects of one mapping (S3 action names).
READ, WRITE, DELETE = "s3:GetObject", "s3:PutObject", "s3:DeleteObject"
ALL_ACTIONS = frozenset({READ, WRITE, DELETE})


@dataclass(frozen=True)
class Mount:
    """One ``HomeDirectoryMappings`` entry: the logical directory ``/<entry>`` shows
    ``root``, and ``actions`` are the object actions the user's session policy allows there."""

    entry: tuple[str, ...]  # ("receipts",) for /receipts; () for / itself
    root: LogicalRoot
    actions: frozenset[str] = ALL_ACTIONS

    @property
    def logical(self) -> str:
        return "/" + "/".join(self.entry)


@dataclass(frozen=True)
class View:
    """A user's whole logical namespace: ``/`` and the entries mounted over it."""

    home: Mount
    mounts: tuple[Mount, ...] = ()

    @classmethod
    def of(cls, root: LogicalRoot | View) -> View:
        return root if isinstance(root, View) else cls(Mount((), root))

    def mount_for(self, parts: tuple[str, ...]) -> Mount:
        """The mount that serves ``parts``: the longest entry that is a prefix of them."""
        best = self.home
        for mount in self.mounts:
            if parts[: len(mount.entry)] == mount.entry and len(mount.entry) > len(best.entry):
                best = mount
        return best

    def top_level(self) -> list[str]:
        """Names of the one-component entries: directories shown in a listing of ``/``."""
        return [m.entry[0] for m in self.mounts if len(m.entry) == 1]


@dataclass(frozen=True)
class ResolvedPath:
    """A client path after validation: its logical form and its S3 key."""

    root: LogicalRoot
    parts: tuple[str, ...]  # below the mount's entry
    mount: Mount | None = None  # None: the user's ``/`` with every action allowed

    @property
    def is_root(self) -> bool:
        """Whether this is the top of its mapping (``/``, or ``/receipts``)."""
        return not self.parts

    @property
    def entry(self) -> tuple[str, ...]:
        return self.mount.entry if self.mount else ()

    def allows(self, action: str) -> bool:
        """Whether the user's session policy allows ``action`` on this path's objects."""
        return self.mount is None or action in self.mount.actions

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
        return "/" + "/".join((*self.entry, *self.parts))

    @property
    def physical(self) -> str:
        """``/bucket/key``: the form Transfer Family logs and events use."""
        return f"/{self.root.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else ""


def resolve(root: LogicalRoot | View, path: bytes | str) -> ResolvedPath:
    """Map a client path (absolute or relative to ``/``) to a key under ``root`` (or, for a
    :class:`View`, under the mount whose entry is the longest prefix of the path).

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
    view = View.of(root)
    mounted = {m.entry[0] for m in view.mounts if m.entry}
    physical = {view.home.root.bucket, view.home.root.physical_top}
    physical |= {p for m in view.mounts for p in (m.root.bucket, m.root.physical_top)}
    if parts and parts[0] in physical - mounted:
        # The client is addressing the physical layout (/bucket/inbound/other/...): that is
        # either a misconfigured client or a probe for another partner's prefix.
        raise PathRefused(raw, "physical bucket paths are not addressable; use logical paths")
    mount = view.mount_for(tuple(parts))
    resolved = ResolvedPath(
        mount.root, tuple(parts[len(mount.entry) :]), mount if isinstance(root, View) else None
    )
    if len(resolved.key.encode("utf-8")) > MAX_KEY_BYTES:
        raise PathRefused(raw, f"the object key would exceed {MAX_KEY_BYTES} bytes")
    return resolved
