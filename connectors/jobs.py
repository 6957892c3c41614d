"""Scheduled retrievals: list, filter, claim once, retrieve in calls of ≤10, then act.

A job (from ``retrievals.yaml``, see docs/connectors.md) names a connector, a remote
directory, a filename pattern, the landing prefix of a feed and what to do with a remote
file once it is safely in S3 (``leave``, ``delete`` or ``move_to: DIR``).

Exactly-once across overlapping runs: before a file is requested, the run claims it with a
conditional put of ``pk = REMOTE#<connector-id>#<path>``, ``sk = <size>#<mtime>`` in the ledger
table. Only the winner of that put fetches it; a changed file (new size or mtime) is a new
item and is fetched again. A failed transfer releases its claim for the next run; a claim
left by a crashed run may be taken over after ``stale_after`` seconds.

``api`` is either the local service or boto3's ``transfer`` client (managed mode): the same
calls, the same response shapes. Results are settled here when they are final before the
run ends, or by the transfer-status function from the connector's events; settling is
idempotent, so whichever comes first wins and the other is a no-op.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from botocore.exceptions import ClientError

from connectors.service import MAX_PATHS_PER_CALL
from ingest.errors import ConfigError, IngestError, StorageUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client

REMOTE_PK = "REMOTE#"
CLAIMED, FETCHED, RELEASED = "CLAIMED", "FETCHED", "RELEASED"
FINAL = ("COMPLETED", "FAILED")
#: concurrent ledger requests of one run (claims, settles): each is one small item
DB_THREADS = 8


class ConnectorApi(Protocol):
    """The subset of boto3's ``transfer`` client the jobs use (keyword arguments only)."""

    def start_directory_listing(self, **kwargs: Any) -> Any: ...
    def start_file_transfer(self, **kwargs: Any) -> Any: ...
    def list_file_transfer_results(self, **kwargs: Any) -> Any: ...
    def start_remote_delete(self, **kwargs: Any) -> Any: ...
    def start_remote_move(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class RetrievalJob:
    """One configured retrieval."""

    name: str
    connector_id: str
    remote_directory: str
    destination: str
    pattern: str = "*"
    after_success: str = "leave"  # leave | delete | move
    move_to: str | None = None


@dataclass
class JobReport:
    """What one run of one job did."""

    job: str
    listed: int = 0
    matched: int = 0
    claimed: int = 0
    skipped: int = 0
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    transfer_ids: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


# --- configuration ---------------------------------------------------------------------------


def load_jobs(text: str, source: str = "retrievals.yaml") -> list[RetrievalJob]:
    """Parse and validate ``retrievals.yaml``; errors name the file, job and field."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from exc
    entries = data.get("retrievals") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError("must have a top-level 'retrievals:' list", source=source)
    jobs: list[RetrievalJob] = []
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = str(name or f"#{i + 1}")
        if not isinstance(entry, dict):
            raise ConfigError("each retrieval must be a mapping", source=source, feed=where)

        def need(key: str, entry: dict[str, Any] = entry, where: str = where) -> str:
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    "is required (a non-empty string)", source=source, feed=where, field=key
                )
            return value.strip()

        unknown = set(entry) - {
            "name",
            "connector_id",
            "remote_directory",
            "pattern",
            "destination",
            "after_success",
        }
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}", source=source, feed=where)
        after = entry.get("after_success", "leave")
        move_to = None
        if isinstance(after, dict) and set(after) == {"move_to"}:
            move_to, after = str(after["move_to"]), "move"
        elif after not in ("leave", "delete"):
            raise ConfigError(
                "must be leave, delete or {move_to: DIR}",
                source=source,
                feed=where,
                field="after_success",
            )
        destination = need("destination").strip("/")
        if not destination.startswith("inbound/"):
            raise ConfigError(
                "must be a feed prefix under inbound/ (e.g. inbound/acme/orders)",
                source=source,
                feed=where,
                field="destination",
            )
        jobs.append(
            RetrievalJob(
                name=need("name"),
                connector_id=need("connector_id"),
                remote_directory=need("remote_directory"),
                destination=destination,
                pattern=str(entry.get("pattern", "*")),
                after_success=str(after),
                move_to=move_to,
            )
        )
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ConfigError("job names must be unique", source=source)
    return jobs


@dataclass
class JobPorts:
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


# --- the run ---------------------------------------------------------------------------------


def run_jobs(api: ConnectorApi, ports: JobPorts, jobs: Sequence[RetrievalJob]) -> list[JobReport]:
    """Run every job; one job's failure is reported and does not stop the others."""
    reports = []
    for job in jobs:
        try:
            reports.append(run_job(api, ports, job))
        except IngestError as exc:
            reports.append(JobReport(job=job.name, error=str(exc)))
    return reports


def run_job(api: ConnectorApi, ports: JobPorts, job: RetrievalJob) -> JobReport:
    """List, claim, retrieve and settle one job."""
    report = JobReport(job=job.name)
    files = list_remote(api, ports, job)
    report.listed = len(files)
    matched = [
        f for f in files if fnmatch.fnmatchcase(posixpath.basename(f["filePath"]), job.pattern)
    ]
    report.matched = len(matched)
    now = time.time()
    items = [_claim_item(job, f, now) for f in matched]
    wins = _conditional_writes(ports, [_claim_put(ports, item, now) for item in items])
    claimed = [(f, item) for f, item, won in zip(matched, items, wins, strict=True) if won]
    report.skipped = len(matched) - len(claimed)
    report.claimed = len(claimed)
    batches = [
        claimed[i : i + MAX_PATHS_PER_CALL] for i in range(0, len(claimed), MAX_PATHS_PER_CALL)
    ]

    def one_call(batch: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[str, list[Any]]:
        paths = [f["filePath"] for f, _ in batch]
        try:
            transfer_id = api.start_file_transfer(
                ConnectorId=job.connector_id,
                RetrieveFilePaths=paths,
                LocalDirectoryPath=f"/{ports.bucket}/{job.destination}",
            )["TransferId"]
        except Exception:
            for f, _ in batch:
                release(ports, job.connector_id, f, "the transfer could not be started")
            raise
        # The claims are ours alone while CLAIMED: rewriting them whole is safe and batchable.
        for _, item in batch:
            item["transfer_id"] = {"S": transfer_id}
        _batch_put(ports, [item for _, item in batch])
        return transfer_id, batch

    with ThreadPoolExecutor(max_workers=max(1, ports.parallel_calls)) as pool:
        started = list(pool.map(one_call, batches))
    finals: list[tuple[dict[str, Any], dict[str, str]]] = []
    deadline = time.monotonic() + ports.wait_seconds  # one wait for the whole run
    for transfer_id, batch in started:
        report.transfer_ids.append(transfer_id)
        by_path = {f["filePath"]: item for f, item in batch}
        results = wait_for_results(
            api, ports, job.connector_id, transfer_id, len(batch), deadline=deadline
        )
        final_paths = set()
        for result in results:
            if result["StatusCode"] in FINAL:
                finals.append((by_path[result["FilePath"]], result))
                final_paths.add(result["FilePath"])
        # not final yet: settled later from its event
        report.pending.extend(sorted(set(by_path) - final_paths))

    won = _conditional_writes(
        ports, [_settle_update(ports, item, result) for item, result in finals]
    )
    actions = [
        item
        for (item, result), w in zip(finals, won, strict=True)
        if w and result["StatusCode"] == "COMPLETED"
    ]
    with ThreadPoolExecutor(max_workers=DB_THREADS) as pool:
        list(pool.map(lambda item: _after_success(api, ports, job.connector_id, item), actions))
    for _, result in finals:
        if result["StatusCode"] == "COMPLETED":
            report.completed.append(result["FilePath"])
        else:
            report.failed[result["FilePath"]] = result.get("FailureCode", "")
    report.completed.sort()
    return report


def list_remote(api: ConnectorApi, ports: JobPorts, job: RetrievalJob) -> list[dict[str, Any]]:
    """The job directory's files, via StartDirectoryListing and its S3 output file."""
    out = api.start_directory_listing(
        ConnectorId=job.connector_id,
        RemoteDirectoryPath=job.remote_directory,
        OutputDirectoryPath=f"/{ports.bucket}/{ports.listing_prefix}",
        MaxItems=10000,
    )
    key = f"{ports.listing_prefix}/{out['OutputFileName']}"
    deadline = time.monotonic() + ports.wait_seconds
    while True:  # the managed service writes the file asynchronously
        try:
            body = ports.s3.get_object(Bucket=ports.bucket, Key=key)["Body"].read()
            break
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise StorageUnavailableError("s3", "GetObject", str(exc)) from exc
            if time.monotonic() > deadline:
                raise StorageUnavailableError(
                    "s3", "GetObject", f"listing {key} never appeared"
                ) from exc
            time.sleep(ports.poll_seconds)
    ports.s3.delete_object(Bucket=ports.bucket, Key=key)
    listing = json.loads(body)
    return [f for f in listing.get("files", []) if "size" in f]


def wait_for_results(
    api: ConnectorApi,
    ports: JobPorts,
    connector_id: str,
    transfer_id: str,
    count: int,
    *,
    deadline: float,
) -> list[dict[str, str]]:
    """Poll ListFileTransferResults until every file is final or ``deadline`` (monotonic).

    Files still running at the deadline are left to the transfer-status function.
    """
    while True:
        try:
            results = list(_all_results(api, connector_id, transfer_id))
        except ClientError as exc:
            # the managed service may not know a transfer for a moment after starting it
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise StorageUnavailableError(
                    "transfer", "ListFileTransferResults", str(exc)
                ) from exc
            results = []
        done = len(results) >= count and all(r["StatusCode"] in FINAL for r in results)
        if done or time.monotonic() > deadline:
            return results
        time.sleep(ports.poll_seconds)


def _all_results(
    api: ConnectorApi, connector_id: str, transfer_id: str
) -> Iterator[dict[str, str]]:
    kwargs: dict[str, Any] = {"ConnectorId": connector_id, "TransferId": transfer_id}
    while True:
        page = api.list_file_transfer_results(**kwargs)
        yield from page.get("FileTransferResults", [])
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


# --- the claim items -------------------------------------------------------------------------


def _key(connector_id: str, f: Mapping[str, Any]) -> dict[str, Any]:
    version = f"{f.get('size', '')}#{f.get('modifiedTimestamp', '')}"
    return {"pk": {"S": f"{REMOTE_PK}{connector_id}#{f['filePath']}"}, "sk": {"S": version}}


def _claim_item(job: RetrievalJob, f: Mapping[str, Any], now: float) -> dict[str, Any]:
    item = {
        **_key(job.connector_id, f),
        "status": {"S": CLAIMED},
        "claimed_at": {"N": repr(now)},
        "job": {"S": job.name},
        "file_path": {"S": f["filePath"]},
        "size": {"N": str(f["size"])},
        "after_success": {"S": job.after_success},
    }
    if job.move_to:
        item["move_to"] = {"S": job.move_to}
    return item


def _claim_put(ports: JobPorts, item: dict[str, Any], now: float) -> dict[str, Any]:
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
                ":released": {"S": RELEASED},
                ":claimed": {"S": CLAIMED},
                ":stale": {"N": repr(now - ports.stale_after)},
            },
        }
    }


def claim(
    ports: JobPorts, job: RetrievalJob, f: Mapping[str, Any], *, now: float | None = None
) -> bool:
    """Claim one remote file version for this run; False if another run has (or had) it."""
    now = time.time() if now is None else now
    return _conditional_writes(ports, [_claim_put(ports, _claim_item(job, f, now), now)])[0]


def _settle_update(
    ports: JobPorts, item: Mapping[str, Any], result: Mapping[str, str]
) -> dict[str, Any]:
    """CLAIMED → FETCHED (completed) or RELEASED (failed), only for the claim's own transfer."""
    values: dict[str, Any] = {":claimed": {"S": CLAIMED}, ":t": item["transfer_id"]}
    if result["StatusCode"] == "COMPLETED":
        expression = "SET #s = :new, fetched_at = :now"
        values.update({":new": {"S": FETCHED}, ":now": {"N": repr(time.time())}})
    else:
        expression = "SET #s = :new, reason = :r"
        reason = f"{result.get('FailureCode', '')}: {result.get('FailureMessage', '')}"
        values.update({":new": {"S": RELEASED}, ":r": {"S": reason[:1000]}})
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


def _conditional_writes(ports: JobPorts, actions: list[dict[str, Any]]) -> list[bool]:
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
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise StorageUnavailableError("dynamodb", f"{kind}Item", str(exc)) from exc
    return True


def _batch_put(ports: JobPorts, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
        pending: Any = {ports.table: chunk}
        try:
            while pending:
                pending = ports.db.batch_write_item(RequestItems=pending).get("UnprocessedItems")
        except ClientError as exc:
            raise StorageUnavailableError("dynamodb", "BatchWriteItem", str(exc)) from exc


def release(ports: JobPorts, connector_id: str, f: Mapping[str, Any], reason: str) -> None:
    """Give a claim back so the next run retries the file."""
    _update(
        ports,
        _key(connector_id, f),
        "SET #s = :released, reason = :r",
        {":released": {"S": RELEASED}, ":r": {"S": reason[:1000]}, ":claimed": {"S": CLAIMED}},
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
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise StorageUnavailableError("dynamodb", "UpdateItem", str(exc)) from exc
    return True


def _after_success(
    api: ConnectorApi, ports: JobPorts, connector_id: str, item: Mapping[str, Any]
) -> None:
    """Delete or move the remote file of a FETCHED claim (a failure is noted, not raised)."""
    path = item["file_path"]["S"]
    after = item.get("after_success", {}).get("S", "leave")
    try:
        if after == "delete":
            api.start_remote_delete(ConnectorId=connector_id, DeletePath=path)
        elif after == "move":
            target = posixpath.join(item["move_to"]["S"], posixpath.basename(path))
            api.start_remote_move(ConnectorId=connector_id, SourcePath=path, TargetPath=target)
    except Exception as exc:  # the file is safely in S3; record the failed action
        key = {"pk": item["pk"], "sk": item["sk"]}
        _update(ports, key, "SET action_error = :e", {":e": {"S": str(exc)[:1000]}})


def find_claim(
    ports: JobPorts, connector_id: str, path: str, transfer_id: str
) -> dict[str, Any] | None:
    """The claim item of ``path`` that belongs to ``transfer_id``, if any."""
    resp = ports.db.query(
        TableName=ports.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{REMOTE_PK}{connector_id}#{path}"}},
        ConsistentRead=True,
    )
    for item in resp.get("Items", []):
        if item.get("transfer_id", {}).get("S") == transfer_id:
            return dict(item)
    return None


def settle(
    api: ConnectorApi,
    ports: JobPorts,
    *,
    connector_id: str,
    path: str,
    transfer_id: str,
    result: Mapping[str, str],
) -> bool:
    """Apply a final result to its claim, once: FETCHED (+ after-success action) or RELEASED.

    Returns True when this call made the change (and so ran the action).
    """
    item = find_claim(ports, connector_id, path, transfer_id)
    if item is None:
        return False  # not a scheduled retrieval (e.g. a manual transfer)
    won = _single(ports, _settle_update(ports, item, result))
    if won and result["StatusCode"] == "COMPLETED":
        _after_success(api, ports, connector_id, item)
    return won
