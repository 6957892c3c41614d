"""Content duplicates (feed ``duplicates``) through the fanout handler on moto: the same bytes
under a new name with skip, fail and allow; outside the window (an injected clock); a
multipart upload whose digest is S3's full-object checksum; two identical files at once."""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from ingest.domain.files import FileStatus
from ingest.usecases.duplicates import DuplicatePorts, check_duplicate
from ingest.usecases.fanout import Outcome
from ingest_local.moto_fidelity import serialize_dynamodb_requests

Pipeline = Any
FEEDS = Path(__file__).resolve().parents[3] / "fixtures" / "admission-feeds.yaml"
ROWS = b"order_id,amount\n" + b"".join(b"o%d,%d.5\n" % (i, i) for i in range(10))
SHA = f"sha256:{hashlib.sha256(ROWS).hexdigest()}"


@pytest.fixture
def feeds_yaml() -> str:
    return FEEDS.read_text()


def _outcome(result: dict[str, Any]) -> str:
    (file,) = result["files"]
    return str(file["outcome"])


def _gate(**changes: Any) -> DuplicatePorts:
    """The fanout's duplicate gate ports, changed (and wired back into the fanout)."""
    from lambdas import fanout

    wired = fanout.wiring()
    ports: DuplicatePorts = wired.ports.content_gate.keywords["ports"]  # type: ignore[attr-defined]
    changed = replace(ports, **changes)
    gate = functools.partial(check_duplicate, ports=changed)
    fanout.wiring.use(replace(wired, ports=replace(wired.ports, content_gate=gate)))
    return changed


def test_skip_fail_and_allow_for_the_same_bytes_under_a_new_name(pipeline: Pipeline) -> None:
    assert _outcome(pipeline.land("inbound/acme/deduped/mon.csv", ROWS)) == Outcome.QUEUED
    assert pipeline.file("inbound/acme/deduped/mon.csv").digest == SHA
    assert _outcome(pipeline.land("inbound/acme/deduped/tue.csv", ROWS)) == Outcome.DUPLICATE
    skipped = pipeline.file("inbound/acme/deduped/tue.csv")
    assert (skipped.status, skipped.duplicate_of, skipped.digest) == (
        FileStatus.DUPLICATE,
        "inbound/acme/deduped/mon.csv",
        SHA,
    )
    # another partner's identical file is its own delivery
    assert _outcome(pipeline.land("inbound/globex/deduped/tue.csv", ROWS)) == Outcome.QUEUED

    pipeline.land("inbound/acme/strict/mon.csv", ROWS)
    assert _outcome(pipeline.land("inbound/acme/strict/again.csv", ROWS)) == Outcome.FAILED
    failed = pipeline.file("inbound/acme/strict/again.csv")
    assert failed.status == FileStatus.FAILED
    assert failed.reason is not None
    assert failed.reason.startswith("duplicate of inbound/acme/strict/mon.csv")

    pipeline.land("inbound/acme/orders/mon.csv", ROWS)
    assert _outcome(pipeline.land("inbound/acme/orders/tue.csv", ROWS)) == Outcome.QUEUED
    pipeline.drain()
    statuses = {
        key: pipeline.file(key).status
        for key in (
            "inbound/acme/deduped/mon.csv",
            "inbound/globex/deduped/tue.csv",
            "inbound/acme/strict/mon.csv",
            "inbound/acme/orders/mon.csv",
            "inbound/acme/orders/tue.csv",
        )
    }
    assert set(statuses.values()) == {FileStatus.PROCESSED}, statuses
    assert pipeline.file("inbound/acme/deduped/tue.csv").rows_ok == 0
    # deduped: 10 (acme) + 10 (globex); strict: 10; orders: 10 (tue overwrote mon's keys)
    assert pipeline.count_items() == 40


def test_outside_the_window_the_same_bytes_are_ingested_again(pipeline: Pipeline) -> None:
    now = [1_800_000_000.0]
    _gate(clock=lambda: now[0])
    pipeline.land("inbound/acme/deduped/jan.csv", ROWS)
    now[0] += 29 * 86400  # inside the feed's 30 days
    assert _outcome(pipeline.land("inbound/acme/deduped/feb.csv", ROWS)) == Outcome.DUPLICATE
    now[0] += 2 * 86400  # 31 days after the first
    assert _outcome(pipeline.land("inbound/acme/deduped/mar.csv", ROWS)) == Outcome.QUEUED
    # and it owns the content now: a copy the next day is its duplicate
    now[0] += 86400
    assert _outcome(pipeline.land("inbound/acme/deduped/apr.csv", ROWS)) == Outcome.DUPLICATE
    assert pipeline.file("inbound/acme/deduped/apr.csv").duplicate_of == (
        "inbound/acme/deduped/mar.csv"
    )


def test_a_multipart_upload_uses_s3s_full_object_checksum(pipeline: Pipeline) -> None:
    streamed: list[str] = []
    ports = _gate()

    class Counting:
        def stored(self, *args: Any, **kwargs: Any) -> Any:
            return ports.digests.stored(*args, **kwargs)

        def streamed(self, bucket: str, key: str, **kwargs: Any) -> str:
            streamed.append(key)
            return ports.digests.streamed(bucket, key, **kwargs)

    _gate(digests=Counting())
    big = ROWS + b"".join(b"m%d,1.0\n" % i for i in range(700_000))  # > 5 MiB: two parts
    key = "inbound/acme/deduped/big.csv"
    s3, bucket = pipeline.s3, pipeline.bucket
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT"
    )
    cut = 5 * 1024 * 1024
    parts = []
    for number, body in ((1, big[:cut]), (2, big[cut:])):
        part = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm="SHA256",
        )
        parts.append(
            {"ETag": part["ETag"], "PartNumber": number, "ChecksumSHA256": part["ChecksumSHA256"]}
        )
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    head = s3.head_object(Bucket=bucket, Key=key)
    pipeline.notify(
        key, size=head["ContentLength"], etag=done["ETag"], version=head.get("VersionId")
    )
    assert pipeline.file(key).digest == f"sha256:{hashlib.sha256(big).hexdigest()}"
    assert streamed == []  # S3's own checksum, not a second read of the object
    # the same bytes in one plain PUT (no checksum of S3's: streamed) are its duplicate
    copy = "inbound/acme/deduped/big-copy.csv"
    assert _outcome(pipeline.land(copy, big)) == Outcome.DUPLICATE
    assert streamed == [copy]
    assert pipeline.file(copy).duplicate_of == key


def test_two_identical_files_landing_at_once_ingest_once(pipeline: Pipeline) -> None:
    serialize_dynamodb_requests()  # moto's DynamoDB, as atomic as DynamoDB (as `ingest up`)
    keys = [f"inbound/acme/deduped/at-once-{i}.csv" for i in range(2)]
    puts = {key: pipeline.put(key, ROWS) for key in keys}
    barrier = threading.Barrier(2)
    ports = _gate()

    class BothDigestFirst:
        def __getattr__(self, name: str) -> Any:
            return getattr(ports.index, name)

        def claim_digest(self, **kwargs: Any) -> Any:
            barrier.wait(timeout=20)
            return ports.index.claim_digest(**kwargs)

    _gate(index=BothDigestFirst())
    outcomes: dict[str, str] = {}

    def land(key: str) -> None:
        result = pipeline.notify(key, size=len(ROWS), etag=puts[key]["ETag"], version=None)
        outcomes[key] = _outcome(result)

    threads = [threading.Thread(target=land, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == [Outcome.DUPLICATE, Outcome.QUEUED]
    assert pipeline.queue_depth() == 1
