"""Scheduled retrievals: list, filter, claim once, retrieve in calls of ≤10, then act.

The jobs come from ``retrievals.yaml`` (:mod:`connectors.jobfile`). Exactly-once across
overlapping runs comes from the ledger claims of :mod:`connectors.claims`.

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
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from connectors.claims import (
    DB_THREADS,
    ConnectorApi,
    JobPorts,
    after_success,
    batch_put,
    claim_item,
    claim_put,
    conditional_writes,
    release,
    settle,
    settle_update,
)
from connectors.jobfile import RetrievalJob, load_jobs
from connectors.request_rules import MAX_PATHS_PER_CALL
from ingest.adapters.dynamo import attr
from ingest.errors import IngestError, StorageUnavailableError

__all__ = [
    "ConnectorApi",
    "JobPorts",
    "JobReport",
    "RetrievalJob",
    "load_jobs",
    "run_job",
    "run_jobs",
    "settle",
]

FINAL = ("COMPLETED", "FAILED")


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
    items = [claim_item(job, f, now) for f in matched]
    wins = conditional_writes(ports, [claim_put(ports, item, now) for item in items])
    claimed = [(f, item) for f, item, won in zip(matched, items, wins, strict=True) if won]
    report.skipped = len(matched) - len(claimed)
    report.claimed = len(claimed)
    batches = [
        claimed[i : i + MAX_PATHS_PER_CALL] for i in range(0, len(claimed), MAX_PATHS_PER_CALL)
    ]

    deadline = time.monotonic() + ports.wait_seconds  # one wait for the whole run

    def one_call(
        batch: list[tuple[dict[str, Any], dict[str, Any]]],
    ) -> tuple[str, list[Any], list[dict[str, str]]]:
        """Start one call of ≤ 10 files, record its transfer id, and wait for its results
        (each call waits on its own thread, so the calls' waits overlap)."""
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
            item["transfer_id"] = attr(transfer_id)
        batch_put(ports, [item for _, item in batch])
        results = wait_for_results(
            api, ports, job.connector_id, transfer_id, len(batch), deadline=deadline
        )
        return transfer_id, batch, results

    with ThreadPoolExecutor(max_workers=max(1, ports.parallel_calls)) as pool:
        started = list(pool.map(one_call, batches))
    finals: list[tuple[dict[str, Any], dict[str, str]]] = []
    for transfer_id, batch, results in started:
        report.transfer_ids.append(transfer_id)
        by_path = {f["filePath"]: item for f, item in batch}
        final_paths = set()
        for result in results:
            if result["StatusCode"] in FINAL:
                finals.append((by_path[result["FilePath"]], result))
                final_paths.add(result["FilePath"])
        # not final yet: settled later from its event
        report.pending.extend(sorted(set(by_path) - final_paths))

    won = conditional_writes(ports, [settle_update(ports, item, result) for item, result in finals])
    actions = [
        item
        for (item, result), w in zip(finals, won, strict=True)
        if w and result["StatusCode"] == "COMPLETED"
    ]
    with ThreadPoolExecutor(max_workers=DB_THREADS) as pool:
        list(pool.map(lambda item: after_success(api, ports, job.connector_id, item), actions))
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
