"""What an open SFTP handle is (an upload or a download) and how S3 entries look as attrs."""

from __future__ import annotations

import asyncio
import stat as stat_mode
from dataclasses import dataclass, field

import asyncssh

from ingest.local.gateway import store
from ingest.local.gateway.paths import ResolvedPath
from ingest.local.gateway.uploads import StreamingUpload

DIR_MODE = stat_mode.S_IFDIR | 0o755
FILE_MODE = stat_mode.S_IFREG | 0o644
READ_BLOCK = 4 * 1024 * 1024  # downloads fetch this much per ranged GET and serve from it


@dataclass(eq=False)  # identity semantics: handles live in a set until closed
class UploadHandle:
    """A file opened for writing: its path and its streaming upload."""

    path: ResolvedPath
    upload: StreamingUpload
    started: str


@dataclass
class DownloadHandle:
    """A file opened for reading, with the block of it fetched last."""

    path: ResolvedPath
    size: int
    bytes_out: int = 0
    block_start: int = 0
    block: bytes = b""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def attrs_of(entry: store.Entry | None, *, is_dir: bool = False) -> asyncssh.SFTPAttrs:
    """SFTP attributes of an S3 object (a file) or a prefix (a directory)."""
    if entry is None or entry.is_dir or is_dir:
        return asyncssh.SFTPAttrs(permissions=DIR_MODE, size=0, uid=0, gid=0)
    mtime = int(entry.mtime or 0)
    return asyncssh.SFTPAttrs(
        permissions=FILE_MODE, size=entry.size, uid=0, gid=0, atime=mtime, mtime=mtime
    )
