"""Zip archives for the tests, built with the stdlib ``zipfile`` at test time (never committed).

Hostile archives that ``zipfile`` will not write (an encrypted flag without encryption, sizes
that lie) are made by changing the fields of a well-formed archive's central directory: the
offsets are those of APPNOTE.TXT 4.3.12, read with ``struct``, and ``zipfile`` must then read
the result as the attacker's archive (each helper checks that it does).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from support_deliveries import build_zip

__all__ = ["MIB", "build_zip", "patch_central", "zeros_bomb"]

CENTRAL = b"PK\x01\x02"
MIB = 1024 * 1024


def _central_entries(data: bytes) -> Iterator[tuple[int, str]]:
    """(offset, name) of each central directory entry."""
    start = data.find(CENTRAL)
    while start != -1:
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, start + 28)
        name = data[start + 46 : start + 46 + name_len].decode("utf-8", "replace")
        yield start, name
        start = data.find(CENTRAL, start + 46 + name_len + extra_len + comment_len)


def patch_central(
    data: bytes, name: str, *, size: int | None = None, flags: int = 0, method: int | None = None
) -> bytes:
    """``data`` with member ``name``'s central entry declaring ``size``, ``flags`` or'ed in
    and compression ``method``."""
    out = bytearray(data)
    for offset, found in _central_entries(data):
        if found != name:
            continue
        if size is not None:
            struct.pack_into("<I", out, offset + 24, size)
        if method is not None:
            struct.pack_into("<H", out, offset + 10, method)
        (old,) = struct.unpack_from("<H", out, offset + 8)
        struct.pack_into("<H", out, offset + 8, old | flags)
        patched = bytes(out)
        info = zipfile.ZipFile(io.BytesIO(patched)).getinfo(name)
        assert size is None or info.file_size == size
        assert info.flag_bits & flags == flags
        assert method is None or info.compress_type == method
        return patched
    raise AssertionError(f"no member {name!r}")


class _RepeatedZeros:
    """A deflate compressor for blocks of zeros that deflates one block once and repeats it.

    After a full flush a deflate stream refers to nothing before it, so the same compressed
    block, repeated, is a valid stream of those zeros repeated: zipfile's streaming writer (its
    headers, sizes and CRC) runs over 10 GB in seconds, and the archive is about 10 MB.
    """

    def __init__(self, block: bytes) -> None:
        self._block_len = len(block)
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        self._compressed = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
        self._end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()

    def compress(self, data: bytes) -> bytes:
        assert len(data) == self._block_len and not any(data[:64])
        return self._compressed

    def flush(self) -> bytes:
        return self._end


@contextmanager
def _zeros_compressor(block: bytes) -> Iterator[None]:
    original: Any = zipfile._get_compressor  # type: ignore[attr-defined]
    zipfile._get_compressor = lambda *_a, **_k: _RepeatedZeros(block)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        zipfile._get_compressor = original  # type: ignore[attr-defined]


def zeros_bomb(total: int, *, name: str = "zeros.csv", block_size: int = 8 * MIB) -> bytes:
    """An honest archive of one member of ``total`` zero bytes (a multiple of the block)."""
    block = bytes(block_size)
    out = io.BytesIO()
    with (
        _zeros_compressor(block),
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(name, "w", force_zip64=True) as member,
    ):
        for _ in range(total // block_size):
            member.write(block)
    data = out.getvalue()
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo(name).file_size == total
    return data
