"""Claims in the ledger table: each remote file version is fetched by exactly one run.

Before a file is requested, the run claims it with a conditional put of
``pk = REMOTE#<connector-id>#<path>``, ``sk = <size>#<mtime>``. Only the winner of that put
fetches it; a changed file (new size or mtime) is a new item and is fetched again. A failed
transfer releases its claim for the next run; a claim left by a crashed run may be taken
over after ``stale_after`` seconds. Settling a final result (``CLAIMED → FETCHED`` and the
after-success action, or ``CLAIMED → RELEASED``) is conditional too, so the retrieve run and
the transfer-status function can both try it and it happens once.

A settler that cannot reach the partner's server (the transfer-status function with the
builtin engine: it ships no SFTP engine) leaves the after-success action *pending*: the claim
is FETCHED with ``action_pending``, and a marker ``pk = PENDING-ACTION#<connector-id>#<job>``,
``sk = <claim pk>|<claim sk>`` lets the job's next retrieve run find it. That run takes the
action with a conditional update (``REMOVE action_pending``: one run wins), runs it, and drops
the marker (:func:`run_pending_actions`).
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct

from connectors.job_types import RetrievalJob
from ingest.adapters.dynamo import attr, from_item
from ingest.adapters.sdk import is_condition_failure, translated, unavailable
from ingest.errors import IngestError, StorageUnavailableError
from ingest.shared.backoff import Backoff

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)

REMOTE_PK = "REMOTE#"
#: the partition of a job's pending after-success actions (markers pointing at their claims)
PENDING_PK = "PENDING-ACTION#"
CLAIMED, FETCHED, RELEASED = "CLAIMED", "FETCHED", "RELEASED"
#: concurrent ledger requests of one run (claims, settles): each is one small item
DB_THREADS = 8
BATCH_BACKOFF = Backoff(attempts=8, base=0.05, cap=5.0)


class ConnectorApi(Protocol):
    """The subset of boto3's ``transfer`` client the jobs use (keyword arguments only)."""

    def start_directory_listing(self, **kwargs: Any) -> Any: ...
    def start_file_transfer(self, **kwargs: Any) -> Any: ...
    def list_file_transfer_results(self, **kwargs: Any) -> Any: ...
    def start_remote_delete(self, **kwargs: Any) -> Any: ...
    def start_remote_move(self, **kwargs: Any) -> Any: ...


class JobPorts(Struct):
    """Where the jobs read and write."""

    s3: S3Client
    db: DynamoDBClient
    table: str
    bucket: str
    listing_prefix: str = "connector-listings"
    parallel_calls: int = 4
    #: how long to wait for an asynchronous (managed) listing or transfer to be final.
    wait_seconds: float = 60.0
    poll_seconds: float = 2.0
    stale_after: float = 3600.0


def _key(connector_id: str, f: Mapping[str, Any]) -> dict[str, Any]:
    version = f"{f.get('size', '')}#{f.get('modifiedTimestamp', '')}"
    return {"pk": attr(f"{REMOTE_PK}{connector_id}#{f['filePath']}"), "sk": attr(version)}


def claim_item(job: RetrievalJob, f: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The claim item of one listed file (``f`` is a listing entry: filePath, size, …)."""
    item = {
        **_key(job.connector_id, f),
        "status": attr(CLAIMED),
        "claimed_at": attr(now),
        "job": attr(job.name),
        "file_path": attr(f["filePath"]),
        "size": attr(f["size"]),
        "after_success": attr(job.after_success),
    }
    if job.move_to:
        item["move_to"] = attr(job.move_to)
    return item


def claim_put(ports: JobPorts, item: dict[str, Any], now: float) -> dict[str, Any]:
    """A conditional put that only one run can win for a remote file version."""
    return {
        "Put": {
            "TableName": ports.table,
            "Item": item,
            "ConditionExpression": (
                "attribute_not_exists(pk) OR #s = :released "
                "OR (#s = :claimed AND claimed_at < :stale)"
            ),
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {
                ":released": attr(RELEASED),
                ":claimed": attr(CLAIMED),
                ":stale": attr(now - ports.stale_after),
            },
        }
    }


def claim(
    ports: JobPorts, job: RetrievalJob, f: Mapping[str, Any], *, now: float | None = None
) -> bool:
    """Claim one remote file version for this run; False if another run has (or had) it."""
    now = time.time() if now is None else now
    return conditional_writes(ports, [claim_put(ports, claim_item(job, f, now), now)])[0]


def settle_update(
    ports: JobPorts,
    item: Mapping[str, Any],
    result: Mapping[str, str],
    *,
    defer_action: bool = False,
) -> dict[str, Any]:
    """CLAIMED → FETCHED (completed) or RELEASED (failed), only for the claim's own transfer.

    ``defer_action``: the FETCHED claim keeps its after-success action as ``action_pending``
    for the job's next retrieve run.
    """
    values: dict[str, Any] = {":claimed": attr(CLAIMED), ":t": item["transfer_id"]}
    if result["StatusCode"] == "COMPLETED":
        expression = "SET #s = :new, fetched_at = :now"
        values.update({":new": attr(FETCHED), ":now": attr(time.time())})
        if defer_action:
            expression += ", action_pending = :a"
            values[":a"] = item["after_success"]
    else:
        expression = "SET #s = :new, reason = :r"
        reason = f"{result.get('FailureCode', '')}: {result.get('FailureMessage', '')}"
        values.update({":new": attr(RELEASED), ":r": attr(reason[:1000])})
    return {
        "Update": {
            "TableName": ports.table,
            "Key": {"pk": item["pk"], "sk": item["sk"]},
            "UpdateExpression": expression,
            "ConditionExpression": "#s = :claimed AND transfer_id = :t",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
        }
    }


def conditional_writes(ports: JobPorts, actions: list[dict[str, Any]]) -> list[bool]:
    """Run independent conditional writes concurrently; which ones took effect.

    Each write keeps its own condition, so the outcome is that of the writes done one by
    one. (Not TransactWriteItems: a transaction is all-or-nothing, costs double capacity in
    DynamoDB, and moto deep-copies the whole table for every item of one.)
    """
    if len(actions) <= 1:
        return [_single(ports, a) for a in actions]
    with ThreadPoolExecutor(max_workers=DB_THREADS) as pool:
        return list(pool.map(lambda a: _single(ports, a), actions))


def _single(ports: JobPorts, action: Mapping[str, Any]) -> bool:
    """One conditional Put or Update; False when its condition fails."""
    ((kind, params),) = action.items()
    try:
        if kind == "Put":
            ports.db.put_item(**params)
        else:
            ports.db.update_item(**params)
    except (ClientError, BotoCoreError) as exc:
        if is_condition_failure(exc):
            return False
        raise unavailable(exc, "dynamodb", f"{kind}Item") from exc
    return True


def batch_put(
    ports: JobPorts,
    items: list[dict[str, Any]],
    *,
    backoff: Backoff = BATCH_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Unconditional puts, 25 per BatchWriteItem (for items only this run may change);
    UnprocessedItems are sent again after a backoff with jitter."""
    for start in range(0, len(items), 25):
        pending: Any = {
            ports.table: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
        }
        for attempt in range(backoff.attempts):
            if attempt:
                sleep(backoff.delay(attempt))
            with translated("dynamodb", "BatchWriteItem"):
                pending = ports.db.batch_write_item(RequestItems=pending).get("UnprocessedItems")
            if not pending:
                break
        else:
            raise StorageUnavailableError(
                "dynamodb", "BatchWriteItem", f"claims still unprocessed: {len(pending)} tables"
            )


def release(ports: JobPorts, connector_id: str, f: Mapping[str, Any], reason: str) -> None:
    """Give a claim back so the next run retries the file."""
    _update(
        ports,
        _key(connector_id, f),
        "SET #s = :released, reason = :r",
        {":released": attr(RELEASED), ":r": attr(reason[:1000]), ":claimed": attr(CLAIMED)},
        condition="#s = :claimed",
    )


def _update(
    ports: JobPorts,
    key: dict[str, Any],
    expression: str,
    values: dict[str, Any],
    *,
    condition: str | None = None,
) -> bool:
    kwargs: dict[str, Any] = {
        "TableName": ports.table,
        "Key": key,
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values,
    }
    if "#s" in expression or (condition and "#s" in condition):
        kwargs["ExpressionAttributeNames"] = {"#s": "status"}
    if condition:
        kwargs["ConditionExpression"] = condition
    try:
        ports.db.update_item(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        if is_condition_failure(exc):
            return False
        raise unavailable(exc, "dynamodb", "UpdateItem") from exc
    return True


def after_success(
    api: ConnectorApi, ports: JobPorts, connector_id: str, item: Mapping[str, Any]
) -> None:
    """Delete or move the remote file of a FETCHED claim (a failure is noted, not raised)."""
    claim = from_item(item)
    path = claim["file_path"]
    after = claim.get("after_success", "leave")
    try:
        if after == "delete":
            api.start_remote_delete(ConnectorId=connector_id, DeletePath=path)
        elif after == "move":
            target = posixpath.join(claim["move_to"], posixpath.basename(path))
            api.start_remote_move(ConnectorId=connector_id, SourcePath=path, TargetPath=target)
    except (IngestError, ClientError, BotoCoreError) as exc:
        # The file is safely in S3: the failed action is recorded (and logged), not raised.
        log.warning(
            "after-success action failed",
            extra={"connector": connector_id, "path": path, "action": after, "error": str(exc)},
        )
        key = {"pk": item["pk"], "sk": item["sk"]}
        _update(ports, key, "SET action_error = :e", {":e": attr(str(exc)[:1000])})


def find_claim(
    ports: JobPorts, connector_id: str, path: str, transfer_id: str
) -> dict[str, Any] | None:
    """The claim item of ``path`` that belongs to ``transfer_id``, if any."""
    with translated("dynamodb", "Query", path):
        resp = ports.db.query(
            TableName=ports.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": attr(f"{REMOTE_PK}{connector_id}#{path}")},
            ConsistentRead=True,
        )
    for item in resp.get("Items", []):
        if from_item(item).get("transfer_id") == transfer_id:
            return dict(item)
    return None


def has_action(item: Mapping[str, Any]) -> bool:
    """Whether the claim's job does something to the remote file once it is fetched."""
    return bool(from_item(item).get("after_success", "leave") != "leave")


def pending_pk(connector_id: str, job: str) -> str:
    """The partition of one job's pending after-success actions."""
    return f"{PENDING_PK}{connector_id}#{job}"


def _put_pending(ports: JobPorts, connector_id: str, item: Mapping[str, Any]) -> None:
    """The marker by which the job's next retrieve run finds a pending action."""
    claim = from_item(item)
    marker = {
        "pk": attr(pending_pk(connector_id, claim["job"])),
        "sk": attr(f"{claim['pk']}|{claim['sk']}"),
        "claim_pk": item["pk"],
        "claim_sk": item["sk"],
        "file_path": item["file_path"],
        "created_at": attr(time.time()),
    }
    with translated("dynamodb", "PutItem", claim["file_path"]):
        ports.db.put_item(TableName=ports.table, Item=marker)


def settle(
    api: ConnectorApi | None,
    ports: JobPorts,
    *,
    connector_id: str,
    path: str,
    transfer_id: str,
    result: Mapping[str, str],
) -> bool:
    """Apply a final result to its claim, once: FETCHED (+ after-success action) or RELEASED.

    With ``api`` None (a settler without the connector engine) the action is left pending for
    the job's next retrieve run instead. The marker is written before the claim is settled: a
    marker whose claim has no pending action (this call lost the settle) is dropped by that run;
    it is not deleted here, since losing may also mean an earlier delivery of the same event
    won, and the action it left pending is this marker's.

    Returns True when this call made the change (and so ran or deferred the action).
    """
    item = find_claim(ports, connector_id, path, transfer_id)
    if item is None:
        return False  # not a scheduled retrieval (e.g. a manual transfer)
    completed = result["StatusCode"] == "COMPLETED"
    defer = api is None and completed and has_action(item)
    if defer:
        _put_pending(ports, connector_id, item)
    won = _single(ports, settle_update(ports, item, result, defer_action=defer))
    if won and completed and api is not None:
        after_success(api, ports, connector_id, item)
    return won


def _take_pending(ports: JobPorts, key: dict[str, Any]) -> dict[str, Any] | None:
    """Take a claim's pending action (one run wins); the claim item as it now is, or None."""
    try:
        resp = ports.db.update_item(
            TableName=ports.table,
            Key=key,
            UpdateExpression="REMOVE action_pending SET action_taken_at = :now",
            ConditionExpression="attribute_exists(action_pending)",
            ExpressionAttributeValues={":now": attr(time.time())},
            ReturnValues="ALL_NEW",
        )
    except (ClientError, BotoCoreError) as exc:
        if is_condition_failure(exc):
            return None
        raise unavailable(exc, "dynamodb", "UpdateItem") from exc
    return dict(resp["Attributes"])


def run_pending_actions(api: ConnectorApi, ports: JobPorts, job: RetrievalJob) -> list[str]:
    """Run the job's after-success actions that a settler left pending, each once.

    Returns the remote paths whose action this call ran (a failed one is noted on its claim as
    ``action_error``, as :func:`after_success` does).
    """
    pk = pending_pk(job.connector_id, job.name)
    markers: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": ports.table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": attr(pk)},
        "ConsistentRead": True,
    }
    while True:
        with translated("dynamodb", "Query", pk):
            page = ports.db.query(**kwargs)
        markers.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def one(marker: dict[str, Any]) -> str | None:
        claim = _take_pending(ports, {"pk": marker["claim_pk"], "sk": marker["claim_sk"]})
        if claim is not None:
            after_success(api, ports, job.connector_id, claim)
        with translated("dynamodb", "DeleteItem", pk):
            ports.db.delete_item(
                TableName=ports.table, Key={"pk": marker["pk"], "sk": marker["sk"]}
            )
        return None if claim is None else str(from_item(claim)["file_path"])

    with ThreadPoolExecutor(max_workers=DB_THREADS) as pool:
        done = list(pool.map(one, markers))
    return sorted(p for p in done if p is not None)
