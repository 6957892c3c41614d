"""Scheduled retrievals: list, filter, claim once, retrieve in calls of ≤10, then act.

The jobs come from ``retrievals.yaml`` (:mod:`connectors.jobfile`). Exactly-once across
overlapping runs comes from the ledger claims of :mod:`connectors.claims`.

``api`` is either the builtin service or boto3's ``transfer`` client (managed mode): the same
calls, the same response shapes. Results are settled here when they are final before the
run ends, or by the transfer-status function from the connector's events; settling is
idempotent, so whichever comes first wins and the other is a no-op. The transfer-status
function has no SFTP engine: with the builtin engine, the after-success actions of the claims
it settles are left pending and run by the job's next run, first thing.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct, field
from msgspec.structs import asdict

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
    run_pending_actions,
    settle,
    settle_update,
)
from connectors.job_types import RetrievalJob
from connectors.request_rules import MAX_PATHS_PER_CALL
from ingest.adapters.dynamo import attr
from ingest.adapters.sdk import is_not_found, translated, unavailable
from ingest.errors import IngestError, StorageUnavailableError
from ingest.shared.polling import PollTimeoutError, poll_until

__all__ = [
    "ConnectorApi",
    "JobPorts",
    "JobReport",
    "RetrievalJob",
    "run_job",
    "run_jobs",
    "settle",
]

FINAL = ("COMPLETED", "FAILED")


class JobReport(Struct):
    """What one run of one job did."""

    job: str
    #: the job's connector (the per-connector metrics' ConnectorId)
    connector_id: str = ""
    listed: int = 0
    matched: int = 0
    claimed: int = 0
    skipped: int = 0
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    #: remote paths whose after-success action a settler had left pending, run by this run
    actions: list[str] = field(default_factory=list)
    transfer_ids: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- the run ---------------------------------------------------------------------------------


def run_jobs(api: ConnectorApi, ports: JobPorts, jobs: Sequence[RetrievalJob]) -> list[JobReport]:
    """Run every job; one job's failure is reported and does not stop the others."""
    reports = []
    for job in jobs:
        try:
            reports.append(run_job(api, ports, job))
        except IngestError as exc:
            reports.append(JobReport(job=job.name, connector_id=job.connector_id, error=str(exc)))
    return reports


def run_job(api: ConnectorApi, ports: JobPorts, job: RetrievalJob) -> JobReport:
    """Run the job's pending after-success actions, then list, claim, retrieve and settle."""
    report = JobReport(job=job.name, connector_id=job.connector_id)
    report.actions = run_pending_actions(api, ports, job)
    files = list_remote(api, ports, job)
    report.listed = len(files)
    matched = [
        f for f in files if fnmatch.fnmatchcase(posixpath.basename(f["filePath"]), job.pattern)
    ]
    report.matched = len(matched)
    claimed = _claim(ports, job, matched)
    report.skipped = len(matched) - len(claimed)
    report.claimed = len(claimed)
    finals = _retrieve(api, ports, job, claimed, report)
    _settle_finals(api, ports, job, finals, report)
    return report


Claimed = list[tuple[dict[str, Any], dict[str, Any]]]  # (listing entry, claim item)


def _claim(ports: JobPorts, job: RetrievalJob, matched: list[dict[str, Any]]) -> Claimed:
    """The files this run won the claim of."""
    now = time.time()
    items = [claim_item(job, f, now) for f in matched]
    wins = conditional_writes(ports, [claim_put(ports, item, now) for item in items])
    return [(f, item) for f, item, won in zip(matched, items, wins, strict=True) if won]


def _retrieve(
    api: ConnectorApi, ports: JobPorts, job: RetrievalJob, claimed: Claimed, report: JobReport
) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Retrieve the claimed files in calls of ≤ 10; the (claim item, result) of final ones.

    Each call waits for its results on its own thread, so the calls' waits overlap; one
    deadline for the whole run.
    """
    batches = [
        claimed[i : i + MAX_PATHS_PER_CALL] for i in range(0, len(claimed), MAX_PATHS_PER_CALL)
    ]
    deadline = time.monotonic() + ports.wait_seconds

    def one_call(batch: Claimed) -> tuple[str, Claimed, list[dict[str, str]]]:
        transfer_id = _start_transfer(api, ports, job, batch)
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
    return finals


def _start_transfer(api: ConnectorApi, ports: JobPorts, job: RetrievalJob, batch: Claimed) -> str:
    """Start one call of ≤ 10 files and record its transfer id in their claims."""
    paths = [f["filePath"] for f, _ in batch]
    try:
        with translated("transfer", "StartFileTransfer", job.connector_id):
            transfer_id = str(
                api.start_file_transfer(
                    ConnectorId=job.connector_id,
                    RetrieveFilePaths=paths,
                    LocalDirectoryPath=f"/{ports.bucket}/{job.destination}",
                )["TransferId"]
            )
    except IngestError:
        for f, _ in batch:
            release(ports, job.connector_id, f, "the transfer could not be started")
        raise
    # The claims are ours alone while CLAIMED: rewriting them whole is safe and batchable.
    for _, item in batch:
        item["transfer_id"] = attr(transfer_id)
    batch_put(ports, [item for _, item in batch])
    return transfer_id


def _settle_finals(
    api: ConnectorApi,
    ports: JobPorts,
    job: RetrievalJob,
    finals: list[tuple[dict[str, Any], dict[str, str]]],
    report: JobReport,
) -> None:
    """Settle the final results (once each), run after-success actions, fill the report."""
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


def list_remote(api: ConnectorApi, ports: JobPorts, job: RetrievalJob) -> list[dict[str, Any]]:
    """The job directory's files, via StartDirectoryListing and its S3 output file."""
    with translated("transfer", "StartDirectoryListing", job.connector_id):
        out = api.start_directory_listing(
            ConnectorId=job.connector_id,
            RemoteDirectoryPath=job.remote_directory,
            OutputDirectoryPath=f"/{ports.bucket}/{ports.listing_prefix}",
            MaxItems=10000,
        )
    key = f"{ports.listing_prefix}/{out['OutputFileName']}"

    def read_listing() -> bytes | None:
        try:
            return bytes(ports.s3.get_object(Bucket=ports.bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            if is_not_found(exc):
                return None  # the managed service writes the file asynchronously
            raise unavailable(exc, "s3", "GetObject", key) from exc

    try:
        body = poll_until(
            read_listing,
            timeout=ports.wait_seconds,
            interval=ports.poll_seconds,
            what=f"the listing {key}",
        )
    except PollTimeoutError as exc:
        raise StorageUnavailableError("s3", "GetObject", str(exc)) from exc
    with translated("s3", "DeleteObject", key):
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
    latest: list[dict[str, str]] = []

    def final_results() -> list[dict[str, str]] | None:
        nonlocal latest
        try:
            latest = list(_all_results(api, connector_id, transfer_id))
        except (ClientError, BotoCoreError) as exc:
            # the managed service may not know a transfer for a moment after starting it
            if not is_not_found(exc):
                raise unavailable(exc, "transfer", "ListFileTransferResults") from exc
            latest = []
        done = len(latest) >= count and all(r["StatusCode"] in FINAL for r in latest)
        return latest if done else None

    try:
        return poll_until(
            final_results,
            timeout=max(0.0, deadline - time.monotonic()),
            interval=ports.poll_seconds,
            what=f"transfer {transfer_id}",
        )
    except PollTimeoutError:
        return latest


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
