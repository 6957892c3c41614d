"""PGP messages: the plaintext's key, and the key ids a message is encrypted to.

pysequoia decrypts but does not say which keys a message was for when it cannot be
decrypted (its PKESK packets report no key id), so :func:`recipient_key_ids` reads them from
the message's first packets (RFC 9580 §5.1): a refusal then names the key the partner
encrypted to, which is what an operator needs to find the right secret.
"""

from __future__ import annotations

import base64
import binascii
import posixpath

#: The suffixes of an encrypted file (lower case); the plaintext is the key without it.
PGP_SUFFIXES = (".pgp", ".gpg", ".asc")

_PKESK, _SKESK = 1, 3
_ARMOR = b"-----BEGIN PGP MESSAGE-----"


def plaintext_key(key: str) -> str:
    """``inbound/acme/orders.csv.pgp`` → ``inbound/acme/orders.csv``."""
    stem, suffix = posixpath.splitext(key)
    if suffix.lower() not in PGP_SUFFIXES:
        raise ValueError(f"{key} does not end in {', '.join(PGP_SUFFIXES)}")
    return stem


def dearmor_prefix(head: bytes) -> bytes:
    """The binary start of a message from the start of its ASCII armor (or ``head`` itself)."""
    start = head.find(_ARMOR)
    if start < 0:
        return head
    lines = head[start + len(_ARMOR) :].splitlines()[1:]
    body: list[bytes] = []
    in_headers = True
    for raw in lines:
        line = raw.strip()
        if in_headers:  # "Version: …" / "Comment: …" lines, then a blank line
            if b":" in line and not line.startswith(b"="):
                continue
            in_headers = False
            if not line:
                continue
        if not line or line.startswith((b"=", b"-----")):
            break
        body.append(line)
    text = b"".join(body)
    text = text[: len(text) - len(text) % 4]
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        return b""


def recipient_key_ids(head: bytes) -> list[str]:
    """The key ids (16 hex digits, upper case, as gpg prints them) of the PKESK packets at the
    start of a message; ``"anonymous"`` for a hidden recipient, ``"passphrase"`` for a SKESK.

    ``head`` is the message's first bytes (binary or armored); packets cut off at its end are
    left out. A message that does not start with session-key packets gives [].
    """
    data = dearmor_prefix(head)
    ids: list[str] = []
    pos = 0
    while pos < len(data):
        packet = _packet(data, pos)
        if packet is None:
            break
        tag, body_start, body_end = packet
        if tag == _SKESK:
            ids.append("passphrase")
        elif tag == _PKESK:
            if body_end > len(data):
                break
            ids.append(_pkesk_key_id(data[body_start:body_end]))
        else:
            break
        pos = body_end
    return ids


def _packet(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, body start, body end) of the packet at ``pos``; None: not a packet we can size."""
    first = data[pos]
    if not first & 0x80:
        return None
    if first & 0x40:  # new format
        tag = first & 0x3F
        if pos + 1 >= len(data):
            return None
        o1 = data[pos + 1]
        if o1 < 192:
            return tag, pos + 2, pos + 2 + o1
        if o1 < 224:
            if pos + 2 >= len(data):
                return None
            return tag, pos + 3, pos + 3 + ((o1 - 192) << 8) + data[pos + 2] + 192
        if o1 == 255:
            if pos + 6 > len(data):
                return None
            return tag, pos + 6, pos + 6 + int.from_bytes(data[pos + 2 : pos + 6], "big")
        return None  # partial body lengths: the encrypted data itself
    tag = (first >> 2) & 0x0F
    width = {0: 1, 1: 2, 2: 4}.get(first & 0x03)
    if width is None or pos + 1 + width > len(data):
        return None
    length = int.from_bytes(data[pos + 1 : pos + 1 + width], "big")
    return tag, pos + 1 + width, pos + 1 + width + length


def _pkesk_key_id(body: bytes) -> str:
    if not body:
        return "anonymous"
    if body[0] == 3 and len(body) >= 9:
        key_id = body[1:9]
        return "anonymous" if key_id == bytes(8) else key_id.hex().upper()
    if body[0] == 6 and len(body) >= 2:
        size = body[1]
        if size == 0:
            return "anonymous"
        fingerprint = body[3 : 2 + size]  # after the key version octet
        if body[2] == 4:
            return fingerprint[-8:].hex().upper()
        return fingerprint[:8].hex().upper()  # v6 keys: the id is the fingerprint's start
    return "unknown"
