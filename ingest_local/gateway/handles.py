"""What an open SFTP handle is (an upload or a download) and how S3 entries look as attrs."""

from __future__ import annotations

import asyncio
import stat as stat_mode
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncssh

from ingest_local.gateway import store
from ingest_local.gateway.buffers import BufferBudget
from ingest_local.gateway.paths import ResolvedPath
from ingest_local.gateway.streaming import StreamingUpload

DIR_MODE = stat_mode.S_IFDIR | 0o755
FILE_MODE = stat_mode.S_IFREG | 0o644
READ_BLOCK = 4 * 1024 * 1024  # downloads fetch this much per ranged GET and serve from it


@dataclass(eq=False)  # identity semantics: handles live in a set until closed
class UploadHandle:
    """A file opened for writing: its path and its streaming upload."""

    path: ResolvedPath
    upload: StreamingUpload
    started: str


@dataclass(eq=False)
class DownloadHandle:
    """A file opened for reading, with the block of it fetched last."""

    path: ResolvedPath
    size: int
    bytes_out: int = 0
    block_start: int = 0
    block: bytes = b""
    charged: int = 0  # what the cached block costs in the gateway's buffer budget
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def read(
        self,
        offset: int,
        size: int,
        fetch: Callable[[int, int], Awaitable[bytes]],
        budget: BufferBudget,
    ) -> bytes:
        """``size`` bytes at ``offset``: from the cached block, or a new READ_BLOCK fetched
        with ``fetch(offset, length)``. When the budget is spent, only what was asked is
        fetched and nothing is cached: downloads slow down rather than wait or fail."""
        if offset >= self.size:
            return b""  # asyncssh turns an empty read into EOF
        async with self.lock:
            end = self.block_start + len(self.block)
            if not self.block_start <= offset < end or offset + size > end < self.size:
                self.drop_block(budget)
                want = max(size, READ_BLOCK)
                if not budget.try_reserve(want):
                    data = await fetch(offset, size)
                    self.bytes_out += len(data)
                    return data
                self.charged = want
                self.block = await fetch(offset, want)
                self.block_start = offset
            start = offset - self.block_start
            data = self.block[start : start + size]
        self.bytes_out += len(data)
        return data

    def drop_block(self, budget: BufferBudget) -> None:
        """Forget the cached block and give its memory back."""
        self.block = b""
        if self.charged:
            budget.release(self.charged)
            self.charged = 0


def attrs_of(entry: store.Entry | None, *, is_dir: bool = False) -> asyncssh.SFTPAttrs:
    """SFTP attributes of an S3 object (a file) or a prefix (a directory)."""
    if entry is None or entry.is_dir or is_dir:
        return asyncssh.SFTPAttrs(permissions=DIR_MODE, size=0, uid=0, gid=0)
    mtime = int(entry.mtime or 0)
    return asyncssh.SFTPAttrs(
        permissions=FILE_MODE, size=entry.size, uid=0, gid=0, atime=mtime, mtime=mtime
    )
