"""The ledger's index of processed content, for duplicate detection (feed ``duplicates``).

* ``pk = FILE#~digest#<feed>#<partner>#<algorithm>:<value>``, ``sk = DIGEST``: the file whose
  content this is (``file_key``, ``version``, ``at``), until ``expires_at`` (the feed's
  ``duplicate_window`` later: the table's TTL deletes it; until it does, an expired item counts
  as absent). Its partition is a ``FILE#`` one whose "key" starts with ``~``, which no landed key
  does (fanout registers keys under ``inbound/``), and its sort key is not ``FILE``, so
  ``ingest status`` never lists it.

The claim is a conditional put: of two identical files landing at once, one owns the content
and the other is its duplicate.
"""

from __future__ import annotations

from ingest.adapters.dynamo import attr, from_item
from ingest.adapters.ledger import Ledger
from ingest.adapters.ledger_items import file_pk, ledger_item
from ingest.domain.digests import Digest
from ingest.domain.files import FileStatus

DIGEST_SK = "DIGEST"


def digest_subject(feed: str, partner: str, digest: Digest) -> str:
    """The index item's "key" (its partition is ``FILE#`` and this)."""
    return f"~digest#{feed}#{partner}#{digest}"


class DigestIndex:
    """Content digests of processed files (the ``DigestLedger`` port), over the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def claim_digest(
        self,
        *,
        feed: str,
        partner: str,
        digest: Digest,
        key: str,
        version: str,
        expires_at: float,
        now: float,
    ) -> str | None:
        subject = digest_subject(feed, partner, digest)
        item = {
            "pk": file_pk(subject),
            "sk": DIGEST_SK,
            "file_key": key,
            "version": version,
            "digest": str(digest),
            "at": now,
            "expires_at": int(expires_at),
        }
        if self._ledger.write(
            "PutItem",
            Item=ledger_item(item),
            ConditionExpression=(
                "attribute_not_exists(pk) OR expires_at < :now OR file_key = :key"
            ),
            ExpressionAttributeValues={":now": attr(int(now)), ":key": attr(key)},
        ):
            return None
        for found in self._ledger.query_items(subject, DIGEST_SK):
            return str(from_item(found)["file_key"])
        return None  # expired and deleted between the put and the read: take it next time

    def release_digest(self, *, feed: str, partner: str, digest: Digest, key: str) -> None:
        """Drop the index item if it is still ``key``'s (an earlier file that failed)."""
        where = {"pk": attr(file_pk(digest_subject(feed, partner, digest))), "sk": attr(DIGEST_SK)}
        self._ledger.write(
            "TransactWriteItems",
            TransactItems=[
                {
                    "Delete": {
                        "TableName": self._ledger.table,
                        "Key": where,
                        "ConditionExpression": "file_key = :key",
                        "ExpressionAttributeValues": {":key": attr(key)},
                    }
                }
            ],
        )

    def record_digest(self, key: str, version: str, digest: Digest) -> None:
        self._ledger.update_file(
            key,
            "SET digest = :digest",
            condition="version = :v AND #s <> :nothing",
            values={":digest": attr(str(digest)), ":v": attr(version), ":nothing": attr("")},
        )

    def mark_duplicate(
        self,
        key: str,
        version: str,
        ingestion: str,
        *,
        status: FileStatus,
        reason: str,
        duplicate_of: str,
        digest: Digest,
    ) -> bool:
        return self._ledger.update_file(
            key,
            "SET #s = :status, reason = :reason, duplicate_of = :of, digest = :digest, "
            "updated_at = :now",
            condition="version = :v AND ingestion = :i",
            values={
                ":status": attr(status.value),
                ":reason": attr(reason[:1000]),
                ":of": attr(duplicate_of),
                ":digest": attr(str(digest)),
                ":now": attr(self._ledger.clock()),
                ":v": attr(version),
                ":i": attr(ingestion),
            },
        )
