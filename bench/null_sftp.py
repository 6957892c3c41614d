"""An asyncssh SFTP server that accepts any key and discards every byte written to it.

The benchmarks' "SSH library" reference: what receiving a file costs asyncssh itself
(decrypting, parsing and answering SFTP packets), with no S3 work at all. Same ciphers as the
gateway. Prints ``{"port": P, "pid": N}`` once it listens; runs until killed.
Usage: ``python bench/null_sftp.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import asyncssh

from ingest_local.gateway import ENCRYPTION_ALGS


class NullSFTPServer(asyncssh.SFTPServer):
    """Every path is a writable file or the root directory; writes go nowhere."""

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        return object()

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        return len(data)

    def close(self, file_obj: object) -> None:
        return None

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return asyncssh.SFTPAttrs(type=asyncssh.FILEXFER_TYPE_DIRECTORY, permissions=0o40755)

    lstat = stat

    def realpath(self, path: bytes) -> bytes:
        return b"/"


class AnyKeyServer(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return True


async def main() -> None:
    server: Any = await asyncssh.create_server(
        AnyKeyServer,
        "127.0.0.1",
        0,
        server_host_keys=[sys.argv[1]],
        sftp_factory=NullSFTPServer,
        encryption_algs=ENCRYPTION_ALGS,
    )
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
