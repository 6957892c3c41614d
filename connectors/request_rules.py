"""Request checks and path forms of the connector API, with AWS's limits."""

from __future__ import annotations

from collections.abc import Sequence

from msgspec import Struct

from connectors.errors import TransferRequestError
from ingest.shared.uris import parse_bucket_path

MAX_PATHS_PER_CALL = 10
DEFAULT_LISTING_ITEMS = 1000
MAX_LISTING_ITEMS = 10000


def split_s3_path(path: str, what: str) -> tuple[str, str]:
    """``/bucket/prefix`` (AWS's LocalDirectoryPath form) → (bucket, prefix)."""
    try:
        where = parse_bucket_path(path, key_required=False)
    except ValueError as exc:
        raise TransferRequestError(f"{what} must look like /bucket/prefix: {exc}") from None
    return where.bucket, where.key.strip("/")


def join_key(prefix: str, name: str) -> str:
    """An S3 key under ``prefix``."""
    return f"{prefix}/{name}" if prefix else name


def check_paths(paths: Sequence[str], what: str) -> list[str]:
    """AWS's limits on one call's paths: 1 to 10, no repeats, 1 to 1024 characters each."""
    out = list(paths)
    if not 1 <= len(out) <= MAX_PATHS_PER_CALL:
        raise TransferRequestError(
            f"{what} takes 1 to {MAX_PATHS_PER_CALL} paths per call, got {len(out)}"
        )
    if len(set(out)) != len(out):
        raise TransferRequestError(f"{what} names the same path twice")
    for p in out:
        if not p or len(p) > 1024:
            raise TransferRequestError(f"{what}: invalid path {p!r}")
    return out


class TransferRequest(Struct, frozen=True):
    """A checked StartFileTransfer request: a retrieve into ``/bucket/prefix`` or a send."""

    operation: str  # RETRIEVE | SEND
    paths: list[str]
    #: the status records' directory field: local-directory-path | remote-directory-path
    directory_field: str
    directory: str
    bucket: str = ""
    prefix: str = ""


def check_transfer_request(
    *,
    retrieve_file_paths: Sequence[str] | None = None,
    local_directory_path: str | None = None,
    send_file_paths: Sequence[str] | None = None,
    remote_directory_path: str | None = None,
) -> TransferRequest:
    """StartFileTransfer's arguments checked against AWS's rules (TransferRequestError)."""
    if (retrieve_file_paths is None) == (send_file_paths is None):
        raise TransferRequestError(
            "give either RetrieveFilePaths with LocalDirectoryPath, "
            "or SendFilePaths with RemoteDirectoryPath"
        )
    if retrieve_file_paths is not None:
        paths = check_paths(retrieve_file_paths, "RetrieveFilePaths")
        if not local_directory_path:
            raise TransferRequestError("RetrieveFilePaths needs a LocalDirectoryPath")
        bucket, prefix = split_s3_path(local_directory_path, "LocalDirectoryPath")
        return TransferRequest(
            "RETRIEVE", paths, "local-directory-path", local_directory_path, bucket, prefix
        )
    assert send_file_paths is not None
    paths = check_paths(send_file_paths, "SendFilePaths")
    if not remote_directory_path:
        raise TransferRequestError("SendFilePaths needs a RemoteDirectoryPath")
    for p in paths:
        split_s3_path(p, "SendFilePaths")
    return TransferRequest("SEND", paths, "remote-directory-path", remote_directory_path)
