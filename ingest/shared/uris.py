"""S3 locations as people and AWS write them: ``s3://bucket/key`` URIs and ``/bucket/key``
paths (Transfer Family's file paths, the connectors' ``LocalDirectoryPath``)."""

from __future__ import annotations

from msgspec import Struct


class S3Location(Struct, frozen=True):
    """A bucket and a key (or key prefix, possibly empty)."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def path(self) -> str:
        return f"/{self.bucket}/{self.key}"


def parse_s3_uri(uri: str, *, key_required: bool = True) -> S3Location:
    """``s3://bucket/key`` → its bucket and key; ``ValueError`` naming the URI otherwise."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return _split(uri[len("s3://") :], uri, key_required=key_required)


def parse_bucket_path(path: str, *, key_required: bool = True) -> S3Location:
    """``/bucket/key`` → its bucket and key; ``ValueError`` naming the path otherwise."""
    if not path.startswith("/"):
        raise ValueError(f"{path!r} is not a /bucket/key path")
    return _split(path[1:], path, key_required=key_required)


def _split(rest: str, given: str, *, key_required: bool) -> S3Location:
    bucket, _, key = rest.partition("/")
    if not bucket or (key_required and not key):
        shape = "bucket/key" if key_required else "bucket[/prefix]"
        raise ValueError(f"{given!r} does not name a {shape}")
    return S3Location(bucket, key)
