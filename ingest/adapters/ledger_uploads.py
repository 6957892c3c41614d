"""Recording SFTP uploads that did not complete, without losing what the ledger knows.

An upload cut off mid-way never changes what the ledger says about the object that is
actually in S3. Our gateway discards a cut-off upload, so S3 still holds the previous,
complete object: its entry (and counters) stay, and the failure is noted beside them. Transfer
Family leaves the partial object in S3, where fanout holds it until the upload's outcome is
known: that entry becomes PARTIAL.
"""

from __future__ import annotations

from ingest.adapters.dynamo import attr
from ingest.adapters.ledger_items import RACE_RETRIES, LedgerTable, new_file_item
from ingest.domain.files import FileEntry, FileStatus
from ingest.errors import StorageUnavailableError

_NEW = "attribute_not_exists(pk)"


def record_failed_upload(
    ledger: LedgerTable, key: str, *, reason: str, size: int | None, object_etag: str | None
) -> FileStatus | None:
    """An SFTP upload to ``key`` did not complete; ``object_etag`` is what S3 holds now.

    When S3 still holds the object the entry tracks (the server discarded the cut-off
    upload, as our gateway does), the entry is left as it is and the failure is recorded
    beside it (``failed_upload``); returns None. Otherwise (nothing is in S3, or the
    server left the partial object there, as Transfer Family does, held by fanout) the
    entry becomes PARTIAL for that object; returns PARTIAL.
    """
    for _ in range(RACE_RETRIES):
        entry = ledger.get_file(key)
        if (
            entry is not None
            and entry.version is not None
            and entry.version == object_etag
            and not entry.held
        ):
            if _note_failed_upload(ledger, entry, reason=reason, size=size):
                return None
        elif _replace_with_partial(ledger, key, entry, reason=reason, size=size, etag=object_etag):
            return FileStatus.PARTIAL
    raise StorageUnavailableError(
        "dynamodb", "PutItem", f"{key}: the file entry kept changing under a failed upload"
    )


def _note_failed_upload(
    ledger: LedgerTable, entry: FileEntry, *, reason: str, size: int | None
) -> bool:
    note = {"at": ledger.clock(), "reason": reason[:1000], "bytes": size}
    return ledger.update_file(
        entry.key,
        "SET failed_upload = :note",
        condition="version = :v AND #s = :s",
        values={
            ":note": attr({k: v for k, v in note.items() if v is not None}),
            ":v": attr(entry.version),
            ":s": attr(entry.status),
        },
    )


def _replace_with_partial(
    ledger: LedgerTable,
    key: str,
    entry: FileEntry | None,
    *,
    reason: str,
    size: int | None,
    etag: str | None,
) -> bool:
    item = new_file_item(
        key,
        FileStatus.PARTIAL,
        now=ledger.clock(),
        reason=reason,
        # the partial object's own ETag: a late S3 event for it is then a duplicate
        version=etag,
        etag=etag,
        feed=entry.feed if entry else None,
        size=size,
    )
    if entry is None:
        return ledger.write("PutItem", Item=item, ConditionExpression=_NEW)
    # only if the entry is still what was read: else the caller reads it again
    seen = "version = :old" if entry.version else "attribute_not_exists(version)"
    return ledger.write(
        "PutItem",
        Item=item,
        ConditionExpression=f"{seen} AND #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":s": attr(entry.status),
            **({":old": attr(entry.version)} if entry.version else {}),
        },
    )
