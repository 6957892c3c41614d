"""The ledger table's stream, read back: which file entry a stream record changed, and how.

The stream (``NEW_AND_OLD_IMAGES``) carries every item kind of the table; only file entries
(``pk = FILE#<key>``, ``sk = FILE``, :mod:`ingest.adapters.ledger_items`) are files. Chunk
markers, versions, transfers and expected-file entries are someone else's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ingest.adapters.ledger_items import FILE_SK, entry_from_item, file_pk
from ingest.domain.files import FileEntry

_FILE_PK_PREFIX = file_pk("")


def is_file_item(image: Mapping[str, Any] | None) -> bool:
    """Whether a stream image (wire format) is a file's entry."""
    if not image:
        return False
    pk, sk = image.get("pk", {}).get("S", ""), image.get("sk", {}).get("S", "")
    return bool(sk == FILE_SK and str(pk).startswith(_FILE_PK_PREFIX))


def file_change(
    change: Mapping[str, Any],
) -> tuple[FileEntry | None, FileEntry | None] | None:
    """``(old, new)`` entries of a stream record's ``dynamodb`` part; None for other items."""
    old, new = change.get("OldImage") or {}, change.get("NewImage") or {}
    if not (is_file_item(old) or is_file_item(new)):
        return None
    return (
        entry_from_item(old) if is_file_item(old) else None,
        entry_from_item(new) if is_file_item(new) else None,
    )
