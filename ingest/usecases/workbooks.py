"""An xlsx object as a seekable local file for the processor.

A workbook is a zip container: its central directory is at the end and each part is found by
seeking, so it cannot be parsed from a forward-only GET. The object is copied, streaming, into
an anonymous temporary file (Lambda's ``/tmp``, 512 MB by default, of which the processor's
reject spool may also use some), and never held in memory. ``MAX_WORKBOOK_SIZE`` bounds it:
a larger workbook is FAILED before anything is read. openpyxl then reads that file in its
read-only mode, holding one row (and the shared strings) at a time.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from typing import IO

from ingest.domain.messages import ChunkMessage
from ingest.errors import CorruptInputError, InputLimitError
from ingest.usecases.ports import ObjectStore

#: Half of Lambda's default /tmp: the rest stays for the reject spool.
MAX_WORKBOOK_SIZE = 256 * 1024**2
_COPY_BLOCK = 1024 * 1024


def spool_object(
    store: ObjectStore, msg: ChunkMessage, stack: ExitStack, *, limit: int = MAX_WORKBOOK_SIZE
) -> IO[bytes]:
    """The chunk's object (pinned to its version) copied to a temporary file, rewound; the
    file is closed, and so deleted, when ``stack`` closes."""
    if msg.compressed:
        raise CorruptInputError(
            "an xlsx workbook is a zip already: a gzipped one (.xlsx.gz) is not read",
            key=msg.key,
        )
    if msg.end > limit:
        raise InputLimitError(
            f"the workbook is {msg.end} bytes; an xlsx file may be at most {limit} bytes "
            "(it is copied to the function's /tmp to be read)",
            key=msg.key,
            limit="max_workbook_size",
        )
    # closed (and so deleted) by the caller's stack
    local: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
    with store.open_range(
        msg.bucket, msg.key, version_id=msg.version_id, start=0, etag=msg.version
    ) as stream:
        copied = 0
        while block := stream.read(_COPY_BLOCK):
            copied += len(block)
            if copied > limit:  # the object grew since it was planned
                message = f"the workbook is more than {limit} bytes"
                raise InputLimitError(message, key=msg.key, limit="max_workbook_size")
            local.write(block)
    local.seek(0)
    return local
