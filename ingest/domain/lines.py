"""Lines of a landed file's byte range, read in constant memory, and the record they parse to.

Records are read line by line from a binary stream. For a byte range ``[start, end)`` a chunk
owns exactly the records that *start* inside it (Hadoop's TextInputFormat rule): a reader that
begins after byte 0 skips the partial record it lands in, and the last record it owns may run
past ``end``. Files whose records may span lines (CSV with quoted newlines) and gzip files are
never split, so for them the range is always the whole file.

Memory stays bounded whatever the input: a line longer than the feed's ``max_record_size`` is
never held whole. Its first bytes are kept (for the reject's ``raw``) and the rest is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from msgspec import Struct

from ingest.domain.feed_types import DEFAULT_MAX_RECORD_SIZE
from ingest.errors import RowError

_BOM = b"\xef\xbb\xbf"
_UTF8_FAMILY = frozenset({"utf-8", "utf-8-sig"})
#: Bytes kept of a line longer than the limit: enough to recognise the record in a reject.
RAW_PREVIEW = 1024
#: How much of an over-long line is read at a time while it is skipped.
_SKIP_BLOCK = 1024 * 1024


class RawLine(Struct, frozen=True):
    """One physical line and the 1-based line number it has in the whole file.

    ``dropped`` counts the bytes of an over-long line that were skipped, not kept in ``data``.
    """

    number: int
    data: bytes
    dropped: int = 0

    @property
    def size(self) -> int:
        """The line's length in the file, line ending included."""
        return len(self.data) + self.dropped


class ParsedRecord(Struct, frozen=True):
    """A record as parsed from the file: its values, or the reason it is rejected."""

    line: int
    raw: str
    values: dict[str, Any] | None = None
    error: str | None = None


def _read_line(stream: IO[bytes], max_size: int) -> tuple[bytes, int, bool]:
    """The next line (at most ``max_size + 1`` bytes of it), how many more bytes of it were
    skipped, and whether it ended with a newline (rather than at the end of the stream)."""
    line = stream.readline(max_size + 1)
    if line.endswith(b"\n"):
        return line, 0, True
    dropped = 0
    if len(line) > max_size:
        while more := stream.readline(_SKIP_BLOCK):
            dropped += len(more)
            if more.endswith(b"\n"):
                return line, dropped, True
    return line, dropped, False


def iter_lines(
    stream: IO[bytes],
    *,
    start: int,
    end: int | None,
    first_line: int,
    max_size: int = DEFAULT_MAX_RECORD_SIZE,
) -> Iterator[RawLine]:
    """The lines of a stream positioned at ``max(start - 1, 0)`` whose first byte lies in
    ``[start, end)`` (``end=None``: to the end of the stream).

    ``first_line`` is the file-wide number of the first line this range owns. A line longer
    than ``max_size`` bytes keeps only its first ``max_size + 1`` bytes in memory; the rest is
    skipped and counted in ``RawLine.dropped``.
    """
    pos = start
    if start > 0:
        # We were positioned one byte early: if that byte is a newline the record at
        # ``start`` is ours; otherwise we are inside a record owned by the previous range.
        skipped, dropped, ended = _read_line(stream, max_size)
        if not ended:
            return
        pos = start - 1 + len(skipped) + dropped
    number = first_line
    while end is None or pos < end:
        line, dropped, _ = _read_line(stream, max_size)
        if not line:
            return
        yield RawLine(number=number, data=line, dropped=dropped)
        pos += len(line) + dropped
        number += 1


def decode_line(data: bytes, encoding: str, *, at_file_start: bool) -> str:
    """Decode one line, dropping a UTF-8 byte-order mark at the start of the file."""
    if at_file_start and encoding in _UTF8_FAMILY and data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8" if encoding == "utf-8-sig" else encoding)
    except UnicodeDecodeError as exc:
        raise RowError(f"not valid {encoding} at byte {exc.start} of the line") from None


def lossy(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace").rstrip("\r\n")


def strip_eol(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text


def too_long(line: RawLine, max_size: int) -> ParsedRecord | None:
    """The reject of a line longer than ``max_size``, with only its first bytes as ``raw``."""
    if line.size <= max_size:
        return None
    return ParsedRecord(
        line=line.number,
        raw=lossy(line.data[:RAW_PREVIEW]),
        error=f"the record is {line.size} bytes, longer than the feed's max_record_size "
        f"({max_size} bytes)",
    )
