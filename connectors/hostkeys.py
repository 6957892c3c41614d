"""Trusted host keys: the forms operators paste, matching, and the handshake check.

Accepted forms of one trusted key (each is what some tool prints):

* the public key, as Transfer's ``TrustedHostKeys`` takes it: ``ssh-ed25519 AAAA… [comment]``
* a ``known_hosts`` line: ``host[,host…] ssh-ed25519 AAAA… [comment]`` (the host field is
  ignored, as Transfer ignores it: the connector's URL names the host)
* an OpenSSH fingerprint ``SHA256:<base64>`` with or without ``=`` padding
* the legacy MD5 fingerprint ``aa:bb:…:ff`` with or without the ``MD5:`` prefix

Keys are decoded and fingerprinted by asyncssh only; nothing here hashes key bytes itself.
The check runs inside the SSH handshake (asyncssh's ``validate_host_public_key``), which
happens before user authentication, so credentials never reach an unverified server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from typing import Any

import asyncssh
from msgspec import Struct

from connectors.errors import HostKeyFormatError

_SHA256 = re.compile(r"^SHA256:([A-Za-z0-9+/]{43})=?$")
_MD5 = re.compile(r"^(?:MD5:)?((?:[0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2})$")

#: host key algorithms ``scan`` asks for one at a time, like ``ssh-keyscan`` does.
SCAN_ALGORITHMS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
)


class TrustedHostKey(Struct, frozen=True):
    """One trusted key: a full public key, or only its SHA256 or MD5 fingerprint."""

    source: str
    key: asyncssh.SSHKey | None = None
    sha256: str | None = None
    md5: str | None = None

    @property
    def fingerprint(self) -> str:
        """The strongest fingerprint known for this entry (for messages)."""
        if self.key is not None:
            return str(self.key.get_fingerprint("sha256"))
        return self.sha256 or self.md5 or self.source

    def matches(self, presented: asyncssh.SSHKey) -> bool:
        """Whether the server's key is this trusted key."""
        if self.key is not None:
            return bool(self.key.public_data == presented.public_data)
        if self.sha256 is not None:
            return bool(presented.get_fingerprint("sha256") == self.sha256)
        return bool(str(presented.get_fingerprint("md5")).lower() == (self.md5 or "").lower())


def parse_host_key(text: str) -> TrustedHostKey:
    """Parse one trusted key in any accepted form, or raise :class:`HostKeyFormatError`."""
    value = text.strip()
    if not value:
        raise HostKeyFormatError("a trusted host key is empty")
    sha = _SHA256.match(value)
    if sha:
        return TrustedHostKey(source=value, sha256=f"SHA256:{sha.group(1)}")
    md5 = _MD5.match(value)
    if md5:
        return TrustedHostKey(source=value, md5=f"MD5:{md5.group(1).lower()}")
    key = _import_key(value)
    if key is None:
        # A known_hosts line: drop the host pattern field, the rest is a public key line.
        fields = value.split(None, 1)
        if fields[0].startswith("@"):
            raise HostKeyFormatError(
                f"known_hosts markers ({fields[0]}) are not supported in a trusted host key"
            )
        key = _import_key(fields[1]) if len(fields) == 2 else None
    if key is None:
        raise HostKeyFormatError(
            f"not a public key, known_hosts line, SHA256: or MD5 fingerprint: {_clip(value)!r}"
        )
    return TrustedHostKey(source=value, key=key)


def _import_key(text: str) -> asyncssh.SSHKey | None:
    try:
        return asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError):
        return None


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class HostKeyPolicy:
    """A connector's set of trusted keys (several are allowed, for rotation)."""

    def __init__(self, keys: Iterable[str | TrustedHostKey]) -> None:
        self.trusted = [k if isinstance(k, TrustedHostKey) else parse_host_key(k) for k in keys]
        if not self.trusted:
            # No trust on first use: a connector without trusted keys cannot connect.
            raise HostKeyFormatError("at least one trusted host key is required")

    @property
    def expected(self) -> list[str]:
        """The trusted fingerprints, for error messages."""
        return [k.fingerprint for k in self.trusted]

    def is_trusted(self, presented: asyncssh.SSHKey) -> bool:
        """Whether any trusted entry matches the presented key."""
        return any(k.matches(presented) for k in self.trusted)

    def host_key_algorithms(self) -> list[str] | None:
        """Algorithms to offer so the server presents a trusted key type.

        Only known when every entry is a full key; fingerprints don't say the key type, so
        then the default list is offered.
        """
        if any(k.key is None for k in self.trusted):
            return None
        algs: list[str] = []
        for k in self.trusted:
            assert k.key is not None
            for alg in k.key.sig_algorithms:
                name = alg.decode()
                if name not in algs and "@" not in name:
                    algs.append(name)
        return algs


class VerifyingClient(asyncssh.SSHClient):
    """An asyncssh client that checks the host key against a policy during key exchange."""

    def __init__(self, policy: HostKeyPolicy) -> None:
        self.policy = policy
        self.presented: list[asyncssh.SSHKey] = []

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.presented.append(key)
        return self.policy.is_trusted(key)

    @property
    def presented_fingerprints(self) -> list[str]:
        """SHA256 fingerprints of every key the server presented."""
        return [str(k.get_fingerprint("sha256")) for k in self.presented]


def handshake_options(policy: HostKeyPolicy) -> dict[str, Any]:
    """``asyncssh.connect`` keyword arguments that enforce ``policy``.

    ``known_hosts`` must not be None (that would switch verification off); an empty trust
    list makes asyncssh ask :meth:`VerifyingClient.validate_host_public_key` about every key.
    """
    options: dict[str, Any] = {"known_hosts": ([], [], [])}
    algs = policy.host_key_algorithms()
    if algs:
        options["server_host_key_algs"] = algs
    return options


class ScannedKey(Struct, frozen=True):
    """One host key of a server, in every form ``parse_host_key`` accepts."""

    algorithm: str
    public_key: str
    sha256: str
    md5: str
    known_hosts: str


def describe_key(key: asyncssh.SSHKey, host: str, port: int) -> ScannedKey:
    """Every accepted form of ``key`` (fingerprints from asyncssh)."""
    public = key.export_public_key("openssh").decode().strip()
    host_field = host if port == 22 else f"[{host}]:{port}"
    return ScannedKey(
        algorithm=str(key.get_algorithm()),
        public_key=public,
        sha256=str(key.get_fingerprint("sha256")),
        md5=str(key.get_fingerprint("md5")),
        known_hosts=f"{host_field} {public}",
    )


async def scan_host_keys(
    host: str, port: int = 22, *, algorithms: Sequence[str] = SCAN_ALGORITHMS, timeout: float = 10
) -> list[ScannedKey]:
    """The server's host keys, one handshake per algorithm, like ``ssh-keyscan``.

    No authentication is attempted. Raises ``OSError`` if the server cannot be reached.
    """
    found: list[ScannedKey] = []
    seen: set[bytes] = set()
    # The server's preferred key first: this one must work, so its errors are real errors.
    first = await asyncio.wait_for(asyncssh.get_server_host_key(host, port), timeout)
    keys = [first]
    for alg in algorithms:
        try:
            keys.append(
                await asyncio.wait_for(
                    asyncssh.get_server_host_key(host, port, server_host_key_algs=[alg]), timeout
                )
            )
        except (asyncssh.Error, OSError):
            continue  # no key of this type: servers refuse or reset the handshake
    for key in keys:
        if key is not None and key.public_data not in seen:
            seen.add(key.public_data)
            found.append(describe_key(key, host, port))
    return found
