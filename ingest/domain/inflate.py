"""Reading a gzip file with bounded output: a decompression bomb fails at once, with a reason.

A feed bounds how large a compressed file may inflate (``max_decompressed_size``) and by how
much (``max_compression_ratio``, inflated bytes per compressed byte read so far). Either bound
crossed stops the read with :class:`~ingest.errors.InputLimitError` (permanent: the file is
FAILED), long before the bytes would reach a parser or fill a disk: a bomb's ratio shows within
its first megabyte.

The gzip trailer's ISIZE is not used to refuse a file earlier: in a truncated or corrupt file
those four bytes are arbitrary, and would fail it with the wrong reason.
"""

from __future__ import annotations

import gzip
import io
from typing import IO, Any

from ingest.errors import InputLimitError

#: The ratio is only judged once this much has been inflated: tiny files compress oddly.
RATIO_GRACE_BYTES = 1024 * 1024
_BUFFER = 1024 * 1024


class _Counting(io.RawIOBase):
    """Counts the compressed bytes read through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class _Bounded(io.RawIOBase):
    """The inflated stream, checked against the limits after every read."""

    def __init__(
        self, inflated: gzip.GzipFile, compressed: _Counting, *, key: str, limits: InflateLimits
    ) -> None:
        self._inflated = inflated
        self._compressed = compressed
        self._key = key
        self._limits = limits
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # read1: what one step of inflation gives, so lines reach the parser as they come
        data = self._inflated.read1(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.total += n
        self._limits.check(self.total, self._compressed.count, key=self._key)
        return n

    def close(self) -> None:
        self._inflated.close()
        super().close()


class InflateLimits:
    """The two bounds of one feed."""

    def __init__(self, *, max_size: int, max_ratio: int) -> None:
        self.max_size = max_size
        self.max_ratio = max_ratio

    def check(self, inflated: int, compressed: int, *, key: str) -> None:
        """Raise if ``inflated`` bytes from ``compressed`` bytes break a bound."""
        if inflated > self.max_size:
            raise InputLimitError(
                f"inflates to more than the feed's max_decompressed_size ({self.max_size} "
                "bytes); not read further",
                key=key,
                limit="max_decompressed_size",
            )
        if inflated > RATIO_GRACE_BYTES and inflated > self.max_ratio * max(compressed, 1):
            raise InputLimitError(
                f"inflates more than {self.max_ratio} times (max_compression_ratio): "
                f"{inflated} bytes from the first {compressed} compressed bytes; not read "
                "further (a decompression bomb?)",
                key=key,
                limit="max_compression_ratio",
            )


def open_gzip(stream: IO[bytes], *, key: str, limits: InflateLimits) -> IO[bytes]:
    """A buffered, bounded reader of the gzip data in ``stream``."""
    compressed = _Counting(stream)
    inflated = gzip.GzipFile(fileobj=compressed, mode="rb")
    bounded = _Bounded(inflated, compressed, key=key, limits=limits)
    return io.BufferedReader(bounded, buffer_size=_BUFFER)
