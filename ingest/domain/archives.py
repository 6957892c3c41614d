"""Zip archives: where each member goes, and the limits that refuse a zip bomb.

An archive landing at ``inbound/<partner>/<dir>/batch.zip`` is expanded next to itself: a
member ``more/b.csv`` is written to ``inbound/<partner>/<dir>/more/b.csv``. Before anything is
written, the whole central directory is checked (:func:`plan_members`); while a member is
streamed, its real bytes are counted against the same limits (:class:`MemberMeter`), because
the sizes a central directory declares can lie. Every refusal is an
:class:`~ingest.errors.ArchiveRefusedError` naming the rule (``rule``) it broke.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable

from msgspec import Struct

from ingest.errors import ArchiveRefusedError

#: Defaults of a feed's ``zip:`` options (docs/feeds.md, "Zip archives").
DEFAULT_MAX_EXPANDED_BYTES = 4 * 1024**3
DEFAULT_MAX_RATIO = 200
DEFAULT_MAX_MEMBERS = 10_000
#: A member's compression ratio is judged once it has this many bytes (as gzip's is): a small
#: file of repeated lines may compress far better than any limit without being a bomb.
RATIO_AFTER = 1024 * 1024

#: The compression methods members may use (stored, deflated). bzip2 and lzma are refused:
#: the standard library's readers of those inflate one block without an output bound.
STORED, DEFLATED = 0, 8
SUPPORTED_METHODS = {STORED: "stored", DEFLATED: "deflated"}

#: The compression method number of WinZip AES encryption (APPNOTE.TXT, appendix E): the
#: standard library decrypts only the traditional PKWARE scheme (ZipCrypto), so AES members
#: are refused with that reason rather than as an unknown method.
AES = 99
#: General purpose flag bits (APPNOTE.TXT 4.4.4): encrypted; PKWARE strong encryption.
ENCRYPTED_FLAG, STRONG_ENCRYPTION_FLAG = 0x1, 0x40

#: The secrets a feed's ``zip: {password_secret}`` may name: fanout may read these and no
#: others (template.yaml, ``ReadZipPasswords``).
PASSWORD_SECRETS_PREFIX = "sftp-ingest/zip/"

#: S3's longest key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024
#: patterns compiled on first use (re caches them), not at a cold start
_DRIVE = r"^[A-Za-z]:"
_CONTROL = r"[\x00-\x1f\x7f]"


class ZipLimits(Struct, frozen=True):
    """A feed's ``zip:`` options: ``{max_expanded_bytes, max_ratio, max_members}``, and
    where the password of encrypted members is, ``{password_secret, password_key}``."""

    max_expanded_bytes: int = DEFAULT_MAX_EXPANDED_BYTES
    max_ratio: int = DEFAULT_MAX_RATIO
    max_members: int = DEFAULT_MAX_MEMBERS
    #: the Secrets Manager secret holding the password (under PASSWORD_SECRETS_PREFIX;
    #: ``{partner}`` is the archive's partner); None: encrypted members are refused
    password_secret: str | None = None
    #: the JSON key of the password in the secret's string; None: the string is the password
    password_key: str | None = None

    def password_secret_for(self, partner: str) -> str | None:
        """The secret of ``partner``'s archives' password (None: no password configured)."""
        if self.password_secret is None:
            return None
        return self.password_secret.replace("{partner}", partner)


class ArchiveMember(Struct, frozen=True):
    """One entry of an archive's central directory, as declared (the sizes may lie)."""

    name: str
    size: int
    compressed_size: int
    method: int
    encrypted: bool = False
    #: PKWARE's "strong encryption" (flag bit 6): neither ZipCrypto nor readable here
    strong_encryption: bool = False

    @property
    def is_directory(self) -> bool:
        return self.name.endswith("/")


class PlannedMember(Struct, frozen=True):
    """A member and the key it is written to."""

    member: ArchiveMember
    key: str


def member_key(archive_key: str, name: str) -> str:
    """The S3 key of member ``name`` of the archive at ``archive_key``; refuses zip slip."""
    if not name or "\\" in name or name.startswith("/") or re.match(_DRIVE, name):
        raise ArchiveRefusedError(
            f"member {name!r} has an absolute or Windows path (zip slip)",
            key=archive_key,
            rule="zip_slip",
        )
    if re.search(_CONTROL, name):
        raise ArchiveRefusedError(
            f"member {name!r} has a control character in its name",
            key=archive_key,
            rule="zip_slip",
        )
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ArchiveRefusedError(
            f"member {name!r} escapes the archive's directory or has an empty segment (zip slip)",
            key=archive_key,
            rule="zip_slip",
        )
    key = posixpath.join(posixpath.dirname(archive_key), *parts)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ArchiveRefusedError(
            f"member {name[:100]!r}... would have a key longer than S3's {MAX_KEY_BYTES} bytes",
            key=archive_key,
            rule="name",
        )
    return key


def plan_members(
    archive_key: str,
    members: Iterable[ArchiveMember],
    limits: ZipLimits,
) -> list[PlannedMember]:
    """Check a whole central directory before anything is written; the members to write.

    Refused (nothing is written): zip slip, encrypted members when the feed configures no
    password (and, with one, members encrypted otherwise than with ZipCrypto: WinZip AES,
    PKWARE strong encryption), compression methods other than stored and deflated, two
    members with one key, archives inside the archive (expanding those in turn would let a
    small nested archive fan out without bound), more members than ``max_members``, a
    declared total past ``max_expanded_bytes`` and a member past ``max_ratio``. Directories
    are skipped.
    """
    planned: list[PlannedMember] = []
    seen: set[str] = set()
    total = 0

    def refuse(message: str, rule: str) -> ArchiveRefusedError:
        return ArchiveRefusedError(message, key=archive_key, rule=rule)

    for member in members:
        key = member_key(archive_key, member.name)  # directories too: their names must be safe
        if member.is_directory:
            continue
        if member.encrypted:
            _check_encryption(member, limits, refuse)
        if member.method not in SUPPORTED_METHODS:
            raise refuse(
                f"member {member.name!r} uses compression method {member.method} "
                f"(supported: {', '.join(SUPPORTED_METHODS.values())})",
                "method",
            )
        if key in seen or key == archive_key:
            raise refuse(f"member {member.name!r} appears twice or names the archive", "duplicate")
        if _is_archive_key(key):
            raise refuse(
                f"member {member.name!r} is an archive (archives are not nested)", "nested"
            )
        seen.add(key)
        planned.append(PlannedMember(member, key))
        if len(planned) > limits.max_members:
            raise refuse(f"more than {limits.max_members} members (max_members)", "max_members")
        total += member.size
        if total > limits.max_expanded_bytes:
            raise refuse(
                f"members declare more than {limits.max_expanded_bytes} bytes (max_expanded_bytes)",
                "max_expanded_bytes",
            )
        check_ratio(archive_key, member, member.size, limits)
    return planned


def _check_encryption(
    member: ArchiveMember, limits: ZipLimits, refuse: Callable[[str, str], ArchiveRefusedError]
) -> None:
    """An encrypted member may be expanded only with a password, and only if it is ZipCrypto."""
    if limits.password_secret is None:
        raise refuse(
            f"member {member.name!r} is encrypted (no password is configured)", "encrypted"
        )
    if member.method == AES:
        raise refuse(
            f"member {member.name!r} is AES-encrypted (WinZip AES): only traditional PKWARE "
            "encryption (ZipCrypto) is decrypted; ask for a PGP-encrypted archive instead",
            "encrypted",
        )
    if member.strong_encryption:
        raise refuse(
            f"member {member.name!r} uses PKWARE strong encryption: only traditional PKWARE "
            "encryption (ZipCrypto) is decrypted; ask for a PGP-encrypted archive instead",
            "encrypted",
        )


def _is_archive_key(key: str) -> bool:
    return key.lower().endswith(".zip")


def check_ratio(archive_key: str, member: ArchiveMember, size: int, limits: ZipLimits) -> None:
    """Refuse ``member`` if ``size`` bytes of it came from too few compressed bytes."""
    if size > RATIO_AFTER and size > limits.max_ratio * max(member.compressed_size, 1):
        raise ArchiveRefusedError(
            f"member {member.name!r} expands more than {limits.max_ratio} times (max_ratio)",
            key=archive_key,
            rule="max_ratio",
        )


class MemberMeter:
    """Counts the real bytes streamed out of an archive against its limits and declarations.

    One meter per archive; :meth:`add` after each block of a member, :meth:`finish` at its end.
    """

    def __init__(self, archive_key: str, limits: ZipLimits) -> None:
        self.archive_key = archive_key
        self.limits = limits
        self.total = 0

    def add(self, member: ArchiveMember, written: int, block: int) -> None:
        """``block`` more bytes of ``member``, of which ``written`` had come before."""
        self.total += block
        size = written + block
        if size > member.size:
            raise ArchiveRefusedError(
                f"member {member.name!r} holds more than the {member.size} bytes it declares",
                key=self.archive_key,
                rule="declared_size",
            )
        if self.total > self.limits.max_expanded_bytes:
            raise ArchiveRefusedError(
                f"members expand to more than {self.limits.max_expanded_bytes} bytes "
                "(max_expanded_bytes)",
                key=self.archive_key,
                rule="max_expanded_bytes",
            )
        check_ratio(self.archive_key, member, size, self.limits)

    def finish(self, member: ArchiveMember, written: int) -> None:
        """The member ended after ``written`` bytes: it must be the size it declared."""
        if written != member.size:
            raise ArchiveRefusedError(
                f"member {member.name!r} holds {written} bytes, not the {member.size} it declares",
                key=self.archive_key,
                rule="declared_size",
            )
