"""The expected-files check's ledger items (:mod:`ingest.usecases.expected`).

* ``pk = FILE#expected/<feed>/<partner>/<deadline>``, ``sk = FILE``: a MISSING (later LATE)
  deadline, a file entry like any other, so ``ingest status`` lists it. Its ``expectation``
  map holds the deadline, the counts, the late files and ``notified`` (the status whose event
  was published).
* ``pk = EXPECTED#<feed>``, ``sk = SCHEDULE#<tz> <schedule>``: how far one schedule's check
  has got, ``checked`` (the last deadline checked, ISO 8601 UTC) and ``watch_until`` (until
  when one of its MISSING deadlines may still turn LATE, epoch seconds).

Every write is conditional, so a rerun or a retry never makes a second MISSING entry and
never turns an entry back. The feeds' files are read with a Scan of the table (filtered to
the feeds' file entries, a few attributes each): the ledger has no index by feed and time,
and fanout's items stay as they are. Its cost is one read of the table per run that has a
deadline due or a MISSING deadline open (docs/operations.md, "Expected files").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ingest.adapters.dynamo import attr, from_item
from ingest.adapters.ledger_items import FILE_SK, entry_from_item, file_pk, ledger_item
from ingest.adapters.sdk import is_condition_failure, unavailable
from ingest.domain.expected import iso_utc, parse_iso_utc
from ingest.domain.files import FileEntry, FileStatus
from ingest.usecases.expected import Progress

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PROGRESS_PREFIX = "EXPECTED#"
#: DynamoDB's limit on the operands of IN is 100; more feeds than this are filtered here
_MAX_IN = 90
_PROJECTION = "#k, feed, #s, received_at, updated_at, expectation, reason"


def progress_key(feed: str, ident: str) -> dict[str, Any]:
    return {"pk": attr(f"{PROGRESS_PREFIX}{feed}"), "sk": attr(f"SCHEDULE#{ident}")}


class ExpectedItems:
    """The ledger table as the expected-files check uses it. Takes an injected client."""

    def __init__(
        self, client: DynamoDBClient, table: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = client
        self._table = table
        self._clock = clock

    def progress(self, feed: str, ident: str) -> Progress:
        try:
            resp = self._db.get_item(
                TableName=self._table, Key=progress_key(feed, ident), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "dynamodb", "GetItem", f"{feed} {ident}") from exc
        item = from_item(resp.get("Item") or {})
        checked = item.get("checked")
        return Progress(
            checked=parse_iso_utc(checked) if checked else None,
            watch_until=float(item.get("watch_until", 0)),
        )

    def save_progress(self, feed: str, ident: str, progress: Progress) -> None:
        values = {
            **progress_key(feed, ident),
            "checked": attr(iso_utc(progress.checked) if progress.checked else ""),
            "watch_until": attr(progress.watch_until),
            "updated_at": attr(self._clock()),
        }
        self._write("PutItem", Item=values)

    def feed_entries(self, feeds: Collection[str]) -> list[FileEntry]:
        """Every file entry of ``feeds`` (deliveries and MISSING/LATE entries alike)."""
        wanted = sorted(feeds)
        names = {"#k": "key", "#s": "status"}
        values: dict[str, Any] = {":file": attr(FILE_SK)}
        condition = "sk = :file"
        if len(wanted) <= _MAX_IN:
            values.update({f":f{i}": attr(name) for i, name in enumerate(wanted)})
            condition += f" AND feed IN ({', '.join(f':f{i}' for i in range(len(wanted)))})"
        found: list[FileEntry] = []
        paginator = self._db.get_paginator("scan")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                FilterExpression=condition,
                ProjectionExpression=_PROJECTION,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ConsistentRead=True,
            ):
                found.extend(entry_from_item(item) for item in page.get("Items", []))
        except (ClientError, BotoCoreError) as exc:
            raise unavailable(exc, "dynamodb", "Scan", "expected files") from exc
        return [e for e in found if e.feed in feeds]

    def record_missing(self, entry: FileEntry) -> bool:
        """Create a MISSING entry; False when it is there already (a rerun)."""
        values = {
            "pk": file_pk(entry.key),
            "sk": FILE_SK,
            **{k: v for k, v in entry.to_json().items() if v is not None},
        }
        return self._write(
            "PutItem", Item=ledger_item(values), ConditionExpression="attribute_not_exists(pk)"
        )

    def mark_late(self, key: str, expectation: dict[str, Any]) -> bool:
        """MISSING → LATE with the late files; False when it is not MISSING (any more)."""
        return self._write(
            "UpdateItem",
            Key={"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
            UpdateExpression="SET #s = :late, expectation = :e, updated_at = :now, "
            "reason = :reason",
            ConditionExpression="#s = :missing",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":late": attr(FileStatus.LATE.value),
                ":missing": attr(FileStatus.MISSING.value),
                ":e": attr(expectation),
                ":now": attr(self._clock()),
                ":reason": attr(
                    f"came late: {', '.join(expectation.get('late_files', []))}"[:1000]
                ),
            },
        )

    def mark_notified(self, key: str, status: str) -> None:
        """The event of the entry's ``status`` was published."""
        self._write(
            "UpdateItem",
            Key={"pk": attr(file_pk(key)), "sk": attr(FILE_SK)},
            UpdateExpression="SET expectation.notified = :s",
            ConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": attr(status)},
        )

    def _write(self, operation: str, **request: Any) -> bool:
        call = self._db.put_item if operation == "PutItem" else self._db.update_item
        try:
            call(TableName=self._table, **request)
        except (ClientError, BotoCoreError) as exc:
            if is_condition_failure(exc):
                return False
            raise unavailable(exc, "dynamodb", operation) from exc
        return True
