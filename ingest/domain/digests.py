"""Content digests: what a file's bytes are, as ``<algorithm>:<value>``.

Checksum sidecars (``<key>.sha256`` / ``<key>.md5``) and duplicate detection compare files by
digest. A digest is computed by streaming the object (``hashlib``), or taken from S3's own
full-object checksum when the object has one (SHA-256 as hex, like ours; CRC64NVME as S3
gives it, base64).
"""

from __future__ import annotations

import base64

from msgspec import Struct

SHA256 = "sha256"
MD5 = "md5"
CRC64NVME = "crc64nvme"
#: algorithms hashlib streams (the sidecar suffixes)
STREAMED = (SHA256, MD5)


class Digest(Struct, frozen=True):
    """One digest of one object version."""

    algorithm: str
    value: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, _, value = text.partition(":")
        return cls(algorithm, value)


def from_s3_checksum(algorithm: str, encoded: str) -> Digest:
    """S3's ``ChecksumSHA256`` / ``ChecksumCRC64NVME`` (base64) as a :class:`Digest`.

    SHA-256 becomes hex, so that it equals a streamed SHA-256 of the same bytes."""
    if algorithm == SHA256:
        return Digest(SHA256, base64.b64decode(encoded).hex())
    return Digest(algorithm, encoded)
