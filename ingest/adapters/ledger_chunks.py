"""The processor's accounting in the ledger: each chunk's counters added to its file exactly
once, and the file's final status once every chunk is counted. The ledger adapter
(:class:`ingest.adapters.ledger.Ledger`) calls these."""

from __future__ import annotations

from collections.abc import Callable

from msgspec.structs import replace

from ingest.adapters.dynamo import attr
from ingest.adapters.ledger_items import (
    FILE_SK,
    LedgerTable,
    chunk_sk,
    file_pk,
    ledger_item,
    same_file,
)
from ingest.domain.files import FileEntry, FileStatus
from ingest.errors import StaleVersionError


def count_chunk(
    ledger: LedgerTable,
    key: str,
    version: str,
    index: int,
    *,
    rows_ok: int,
    rows_rejected: int,
    ingestion: str | None = None,
    skipped: int = 0,
    declared: int | None = None,
) -> bool:
    """Add a chunk's counters to its file exactly once.

    The chunk marker's conditional put and the counter update are one transaction, so a
    redelivered message (or a retry after a crash) cannot count the chunk twice. Returns
    False when the chunk had already been counted. ``skipped`` adds to the file's
    ``records_skipped``; ``declared`` (a trailer's record count) sets ``declared_records``.
    """
    now = ledger.clock()
    same, same_values = same_file(ingestion)
    marker = {
        "pk": file_pk(key),
        "sk": chunk_sk(version, ingestion, index),
        "rows_ok": rows_ok,
        "rows_rejected": rows_rejected,
        "done_at": now,
    }
    counters = {
        "TableName": ledger.table,
        "Key": {"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
        "UpdateExpression": "ADD rows_ok :ok, rows_rejected :bad, chunks_done :one"
        + (", records_skipped :skip" if skipped else "")
        + " SET updated_at = :now"
        + (", declared_records = :declared" if declared is not None else ""),
        "ConditionExpression": same,
        "ExpressionAttributeValues": {
            **{":ok": attr(rows_ok), ":bad": attr(rows_rejected), ":one": attr(1)},
            **{":now": attr(now), ":v": attr(version), **same_values},
            **({":skip": attr(skipped)} if skipped else {}),
            **({":declared": attr(declared)} if declared is not None else {}),
        },
    }
    counted = ledger.write(
        "TransactWriteItems",
        TransactItems=[
            {
                "Put": {
                    "TableName": ledger.table,
                    "Item": ledger_item(marker),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": counters},
        ],
    )
    if counted:
        return True
    current = ledger.get_file(key)
    if current is None or (current.version, current.ingestion) != (version, ingestion):
        raise StaleVersionError(f"{key}: chunk {index} of version {version} is stale")
    return False


def finish_if_complete(
    ledger: LedgerTable,
    key: str,
    version: str,
    ingestion: str | None = None,
    *,
    verify: Callable[[FileEntry], str | None] | None = None,
) -> FileEntry | None:
    """Set PROCESSED / PROCESSED_WITH_REJECTS once every chunk is counted.

    Safe to call any number of times; returns the final entry when the file is complete.
    ``verify`` looks at the complete entry (every chunk counted) and gives a reason when
    the file as a whole is wrong (a fixed-width trailer's count): then it ends FAILED.
    """
    entry = ledger.get_file(key)
    if (
        entry is None
        or (entry.version, entry.ingestion) != (version, ingestion)
        or entry.chunks_done < entry.chunks
    ):
        return None
    final = FileStatus.PROCESSED_WITH_REJECTS if entry.rows_rejected else FileStatus.PROCESSED
    problem = verify(entry) if verify is not None else None
    if problem is not None:
        final = FileStatus.FAILED
    if entry.status != final:
        same, same_values = same_file(ingestion)
        if not ledger.update_file(
            key,
            "SET #s = :final, updated_at = :now, reason = :reason"
            if problem is not None
            else "SET #s = :final, updated_at = :now REMOVE reason",
            condition=f"{same} AND chunks_done = chunks",
            values={
                ":final": attr(final),
                ":now": attr(ledger.clock()),
                ":v": attr(version),
                **same_values,
                **({":reason": attr(problem[:1000])} if problem is not None else {}),
            },
        ):
            return None
    return replace(entry, status=final, reason=problem)
