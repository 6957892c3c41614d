"""Chunk planning: split a landed file into record-aligned byte ranges.

Only uncompressed files of a splittable feed that are larger than the chunk size are split.
Each chunk ``[start, end)`` owns the records that *start* inside it (see ``formats.iter_lines``),
so a record that straddles a boundary is read once, by the chunk it starts in.

To give every record its file-wide line number, planning counts the newlines before each
boundary in one streaming pass over the file (``first_lines``).
"""

from __future__ import annotations

from collections.abc import Iterable

from msgspec import Struct

#: 16 MiB: about 170,000 rows of 100 bytes, under a minute for one processor at one vCPU, so
#: a large file spreads over many invocations and a retried chunk redoes little
#: (docs/operations.md, "Sizing chunks").
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024


class Chunk(Struct, frozen=True):
    """One unit of processing: a byte range, and the line number of its first record."""

    index: int
    start: int
    end: int
    first_line: int


def plan_ranges(size: int, chunk_size: int, *, splittable: bool) -> list[tuple[int, int]]:
    """Byte ranges covering ``[0, size)``; a single range when the file is not split."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    if not splittable or size <= chunk_size:
        return [(0, size)]
    return [(start, min(start + chunk_size, size)) for start in range(0, size, chunk_size)]


def first_lines(blocks: Iterable[bytes], starts: list[int]) -> list[int]:
    """File-wide line number of the first record owned by a range starting at each offset.

    A range starting at ``s > 0`` owns the first record beginning at or after ``s``: the record
    after the first newline at or after ``s - 1``. Its line number is one more than the number
    of newlines before it, i.e. ``newlines in [0, s - 1) + 2``. ``blocks`` is the file's bytes
    in order (read once, in constant memory).
    """
    targets = sorted({s - 1 for s in starts if s > 0})
    counts: dict[int, int] = {}
    seen = 0
    pos = 0
    t = 0
    for block in blocks:
        block_end = pos + len(block)
        while t < len(targets) and targets[t] <= block_end:
            counts[targets[t]] = seen + block.count(b"\n", 0, targets[t] - pos)
            t += 1
        seen += block.count(b"\n")
        pos = block_end
        if t == len(targets):
            break
    # Offsets beyond the data (cannot happen for ranges inside the file) count everything.
    for target in targets[t:]:
        counts[target] = seen
    return [1 if s == 0 else counts[s - 1] + 2 for s in starts]


def plan_chunks(
    size: int,
    chunk_size: int,
    *,
    splittable: bool,
    read_blocks: Iterable[bytes] | None = None,
) -> list[Chunk]:
    """Plan a file's chunks. ``read_blocks`` is consulted only when the file is split."""
    ranges = plan_ranges(size, chunk_size, splittable=splittable)
    if len(ranges) == 1:
        return [Chunk(index=0, start=0, end=size, first_line=1)]
    if read_blocks is None:
        raise ValueError("a split file needs its bytes to number its lines")
    starts = [start for start, _ in ranges]
    lines = first_lines(read_blocks, starts)
    return [
        Chunk(index=i, start=start, end=end, first_line=line)
        for i, ((start, end), line) in enumerate(zip(ranges, lines, strict=True))
    ]
