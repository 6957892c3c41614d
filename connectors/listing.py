"""A remote directory listing, in the shape of AWS's StartDirectoryListing output file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from msgspec import Struct, field

from connectors.errors import FileTransferError
from connectors.request_rules import join_key
from ingest.adapters.publisher import iso_now

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from connectors.status import StatusPublisher
    from ingest.shared.aio import Bridge


class Lister(Protocol):
    """What a listing run needs of the transfer engine."""

    async def list_directory(self, remote_dir: str, max_items: int) -> Listing: ...


class ListingEntry(Struct):
    """One remote directory entry (AWS listing JSON names)."""

    path: str
    is_dir: bool
    size: int | None = None
    mtime: float | None = None

    def to_file_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filePath": self.path}
        if self.mtime is not None:
            stamp = datetime.fromtimestamp(self.mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            out["modifiedTimestamp"] = stamp
        if self.size is not None:
            out["size"] = self.size
        return out


class Listing(Struct):
    """The result of a directory listing, in AWS's output-file shape."""

    files: list[ListingEntry] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [f.to_file_json() for f in self.files],
            "paths": [{"path": p} for p in self.paths],
            "truncated": self.truncated,
        }


class ListingRun(Struct):
    """One StartDirectoryListing call, for its ``SFTP Connector Directory Listing …`` event."""

    connector_id: str
    connector_arn: str
    listing_id: str
    url: str
    remote_directory_path: str
    output_directory_path: str
    max_items: int
    start_time: str
    end_time: str = ""
    listing: Listing | None = None
    output_bucket: str = ""
    output_prefix: str = ""
    failure_code: str = ""
    failure_message: str = ""

    @property
    def output_name(self) -> str:
        """AWS's output file name: ``<connector-id>-<listing-id>.json``."""
        return f"{self.connector_id}-{self.listing_id}.json"

    @property
    def output_key(self) -> str:
        return join_key(self.output_prefix, self.output_name)

    def detail_type(self) -> str:
        outcome = "Completed" if self.listing is not None else "Failed"
        return f"SFTP Connector Directory Listing {outcome}"

    def event_detail(self) -> dict[str, Any]:
        """The EventBridge ``detail`` with AWS's directory-listing event fields."""
        detail: dict[str, Any] = {
            "connector-id": self.connector_id,
            "listing-id": self.listing_id,
            "url": self.url,
            "remote-directory-path": self.remote_directory_path,
            "output-directory-path": self.output_directory_path,
            "max-items": self.max_items,
            "start-timestamp": self.start_time,
            "end-timestamp": self.end_time,
        }
        if self.listing is None:
            detail.update(
                {
                    "status-code": "FAILED",
                    "failure-code": self.failure_code,
                    "failure-message": self.failure_message,
                }
            )
            return detail
        detail.update(
            {
                "status-code": "COMPLETED",
                "item-count": len(self.listing.files) + len(self.listing.paths),
                "truncated": self.listing.truncated,
                "output-file-location": {
                    "domain": "S3",
                    "bucket": self.output_bucket,
                    "key": self.output_key,
                },
            }
        )
        return detail


async def list_into_s3(
    run: ListingRun, engine: Lister, s3: S3Client, publisher: StatusPublisher, bridge: Bridge
) -> dict[str, str]:
    """Run one listing: the JSON output file to S3, then its Completed or Failed event
    (the blocking calls through ``bridge``)."""
    try:
        listing = await engine.list_directory(run.remote_directory_path, run.max_items)
    except FileTransferError as exc:
        run.end_time = iso_now()
        run.failure_code, run.failure_message = exc.failure_code, exc.failure_message
        await _publish(run, publisher, bridge)
        raise
    body = json.dumps(listing.to_json()).encode()
    await bridge.run(s3.put_object, Bucket=run.output_bucket, Key=run.output_key, Body=body)
    run.listing, run.end_time = listing, iso_now()
    await _publish(run, publisher, bridge)
    return {"ListingId": run.listing_id, "OutputFileName": run.output_name}


async def _publish(run: ListingRun, publisher: StatusPublisher, bridge: Bridge) -> None:
    await bridge.run(
        publisher.publish_event, run.detail_type(), run.event_detail(), run.connector_arn
    )
