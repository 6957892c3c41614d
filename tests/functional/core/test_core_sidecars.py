"""Checksum sidecars and done markers (feed ``wait_for``) through the fanout handler on moto:
each arrival order, a mismatch, ``wait_for: none`` verification, a concurrent release that
queues the file once, and the timeout sweep with an injected clock."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from ingest.domain.files import FileStatus
from ingest.usecases.fanout import Outcome
from ingest.usecases.sidecars import SidecarPorts, sweep_waiting
from ingest_local.moto_fidelity import serialize_dynamodb_requests

Pipeline = Any
FEEDS = Path(__file__).resolve().parents[3] / "fixtures" / "admission-feeds.yaml"
ROWS = b"order_id,amount\n" + b"".join(b"o%d,%d.25\n" % (i, i) for i in range(12))


@pytest.fixture
def feeds_yaml() -> str:
    return FEEDS.read_text()


def _sha256sum(data: bytes, name: str) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()


def _outcome(result: dict[str, Any]) -> str:
    (file,) = result["files"]
    return str(file["outcome"])


def _ports() -> Any:
    from lambdas import fanout

    return fanout.wiring().ports


def test_file_first_waits_then_its_sidecar_releases_it(pipeline: Pipeline) -> None:
    key = "inbound/acme/confirmed/day1.csv"
    assert _outcome(pipeline.land(key, ROWS)) == Outcome.WAITING
    entry = pipeline.file(key)
    assert (entry.status, entry.reason) == (FileStatus.RECEIVED, "awaiting checksum")
    assert pipeline.queue_depth() == 0

    assert _outcome(pipeline.land(f"{key}.sha256", _sha256sum(ROWS, "day1.csv"))) == "IGNORED"
    released = pipeline.file(key)
    assert released.status == FileStatus.QUEUED
    assert released.digest == f"sha256:{hashlib.sha256(ROWS).hexdigest()}"
    assert released.confirmed_by == f"{key}.sha256"
    sidecar = pipeline.file(f"{key}.sha256")
    assert (sidecar.status, sidecar.sidecar_for) == (FileStatus.IGNORED, key)
    assert "released the file" in (sidecar.reason or "")

    pipeline.drain()
    done = pipeline.file(key)
    assert (done.status, done.rows_ok, done.rows_rejected) == (FileStatus.PROCESSED, 12, 0)
    assert pipeline.count_items() == 12  # the sidecar itself wrote no record
    # the same sidecar event again: verified against the processed file, not queued again
    assert _outcome(pipeline.land(f"{key}.sha256", _sha256sum(ROWS, "day1.csv"))) == "IGNORED"
    assert pipeline.queue_depth() == 0
    assert pipeline.file(key).status == FileStatus.PROCESSED


def test_sidecar_first_is_remembered_and_the_file_is_released_when_it_lands(
    pipeline: Pipeline,
) -> None:
    key = "inbound/acme/confirmed/day2.csv"
    md5 = hashlib.md5(ROWS).hexdigest().upper()
    assert _outcome(pipeline.land(f"{key}.md5", md5.encode())) == "IGNORED"
    note = pipeline.file(f"{key}.md5")
    assert note.status == FileStatus.IGNORED
    assert "remembered until the file lands" in (note.reason or "")
    assert pipeline.ledger.get_file(key) is None

    assert _outcome(pipeline.land(key, ROWS)) == Outcome.QUEUED
    pipeline.drain()
    done = pipeline.file(key)
    assert (done.status, done.rows_ok) == (FileStatus.PROCESSED, 12)
    assert done.digest == f"md5:{md5.lower()}"


def test_a_mismatch_fails_the_file_with_both_digests(pipeline: Pipeline) -> None:
    key = "inbound/acme/confirmed/day3.csv"
    pipeline.land(key, ROWS)
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    pipeline.land(f"{key}.sha256", f"{wrong}  day3.csv\n".encode())
    failed = pipeline.file(key)
    assert failed.status == FileStatus.FAILED
    assert wrong in (failed.reason or "")
    assert hashlib.sha256(ROWS).hexdigest() in (failed.reason or "")
    assert pipeline.queue_depth() == 0
    assert "FAILED" in (pipeline.file(f"{key}.sha256").reason or "")

    # a sidecar that holds no digest fails the file too, saying why
    other = "inbound/acme/confirmed/day4.csv"
    pipeline.land(f"{other}.sha256", b"see attached\n")
    pipeline.land(other, ROWS)
    assert pipeline.file(other).status == FileStatus.FAILED
    assert "holds no hex sha256 digest" in (pipeline.file(other).reason or "")


def test_done_markers_by_key_or_by_stem_release_in_either_order(pipeline: Pipeline) -> None:
    first = "inbound/acme/batches/b1.csv"
    assert _outcome(pipeline.land(first, ROWS)) == Outcome.WAITING
    assert pipeline.file(first).reason == "awaiting done marker"
    # a checksum is not what this feed waits for
    pipeline.land(f"{first}.sha256", _sha256sum(ROWS, "b1.csv"))
    assert pipeline.file(first).status == FileStatus.RECEIVED
    pipeline.land("inbound/acme/batches/b1.done", b"")  # <key without extension>.done
    assert pipeline.file(first).status == FileStatus.QUEUED
    assert pipeline.file(first).confirmed_by == "inbound/acme/batches/b1.done"

    second = "inbound/acme/batches/b2.csv"
    pipeline.land(f"{second}.done", b"")  # <key>.done, first
    assert "remembered" in (pipeline.file(f"{second}.done").reason or "")
    assert _outcome(pipeline.land(second, ROWS)) == Outcome.QUEUED
    pipeline.drain()
    assert pipeline.file(first).status == pipeline.file(second).status == FileStatus.PROCESSED
    assert pipeline.count_items() == 12  # the same order ids: two files, one key space


def test_wait_for_none_still_verifies_a_sidecar_before_or_after(pipeline: Pipeline) -> None:
    good = "inbound/acme/orders/ok.csv"
    pipeline.land(good, ROWS)
    pipeline.drain()
    pipeline.land(f"{good}.sha256", _sha256sum(ROWS, "ok.csv"))
    verified = pipeline.file(good)
    assert (verified.status, verified.confirmed_by) == (FileStatus.PROCESSED, f"{good}.sha256")
    assert "verified the PROCESSED file" in (pipeline.file(f"{good}.sha256").reason or "")

    late = "inbound/acme/orders/late.csv"
    pipeline.land(late, ROWS)
    pipeline.drain()
    pipeline.land(f"{late}.sha256", _sha256sum(b"not these bytes", "late.csv"))
    failed = pipeline.file(late)
    assert failed.status == FileStatus.FAILED
    assert "already PROCESSED before its sidecar landed" in (failed.reason or "")

    # a file still queued when a mismatching sidecar lands: FAILED, and its chunks stop
    queued = "inbound/acme/orders/queued.csv"
    pipeline.land(queued, ROWS)
    assert pipeline.file(queued).status == FileStatus.QUEUED
    pipeline.land(f"{queued}.sha256", _sha256sum(b"other", "queued.csv"))
    assert pipeline.file(queued).status == FileStatus.FAILED
    pipeline.drain()
    stopped = pipeline.file(queued)
    assert (stopped.status, stopped.rows_ok) == (FileStatus.FAILED, 0)
    assert "already QUEUED before its sidecar landed: its chunks stop" in (stopped.reason or "")

    early = "inbound/acme/orders/early.csv"
    pipeline.land(f"{early}.md5", b"0" * 32)
    assert _outcome(pipeline.land(early, ROWS)) == Outcome.FAILED
    assert pipeline.queue_depth() == 0


def test_a_file_and_its_sidecar_released_concurrently_are_queued_once(
    pipeline: Pipeline,
) -> None:
    """Both invocations see the file waiting and its sidecar noted; one claim wins."""
    from lambdas import fanout

    serialize_dynamodb_requests()  # moto's DynamoDB, as atomic as DynamoDB (as `ingest up`)
    key = "inbound/acme/confirmed/race.csv"
    pipeline.land(key, ROWS)
    pipeline.put(f"{key}.sha256", _sha256sum(ROWS, "race.csv"))
    ports = _ports()
    barrier = threading.Barrier(2)

    class BothReadFirst:
        def __init__(self, notes: Any) -> None:
            self._notes = notes

        def __getattr__(self, name: str) -> Any:
            return getattr(self._notes, name)

        def claim_release(self, *args: Any, **kwargs: Any) -> Any:
            barrier.wait(timeout=20)
            return self._notes.claim_release(*args, **kwargs)

    assert ports.sidecars is not None
    sidecars = replace(ports.sidecars, notes=BothReadFirst(ports.sidecars.notes))
    fanout.wiring.use(replace(fanout.wiring(), ports=replace(ports, sidecars=sidecars)))
    sidecar_event_results: list[Any] = []

    def sidecar_lands() -> None:
        put = pipeline.s3.head_object(Bucket=pipeline.bucket, Key=f"{key}.sha256")
        sidecar_event_results.append(
            pipeline.notify(
                f"{key}.sha256", size=put["ContentLength"], etag=put["ETag"], version=None
            )
        )

    # the sidecar event twice at once (S3 delivers at least once): both find the file waiting
    threads = [threading.Thread(target=sidecar_lands) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(sidecar_event_results) == 2
    entry = pipeline.file(key)
    assert entry.status == FileStatus.QUEUED
    assert pipeline.queue_depth() == entry.chunks == 1
    pipeline.drain()
    assert pipeline.file(key).rows_ok == 12


def test_the_sweep_fails_files_that_waited_past_wait_timeout(pipeline: Pipeline) -> None:
    key = "inbound/acme/confirmed/never.csv"
    pipeline.land(key, ROWS)
    ports = _ports()
    assert isinstance(ports.sidecars, SidecarPorts)
    since = pipeline.file(key).received_at
    assert since is not None

    def sweep(at: float) -> Any:
        return sweep_waiting(
            at, pipeline.bucket, ports.queueing, ports.sidecars, ports.content_gate
        )

    report = sweep(since + 3600)  # the feed's wait_timeout is 2h
    assert (report.waiting, report.timed_out) == (1, 0)
    assert pipeline.file(key).status == FileStatus.RECEIVED
    report = sweep(since + 2 * 3600 + 1)
    assert (report.waiting, report.timed_out) == (0, 1)
    failed = pipeline.file(key)
    assert failed.status == FileStatus.FAILED
    assert failed.reason is not None
    assert failed.reason.startswith("no checksum/done marker after 2 h")
    assert sweep(since + 3 * 3600) == type(report)()  # nothing left to sweep
    # a sidecar landing after the timeout does not bring the file back
    pipeline.land(f"{key}.sha256", _sha256sum(ROWS, "never.csv"))
    assert pipeline.file(key).status == FileStatus.FAILED
    assert pipeline.queue_depth() == 0


def test_the_wait_sweep_handler_emits_its_documented_metrics(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from support_emf import (
        assert_emitted_as_documented,
        assert_json_logs_with_context,
        emf_points,
        totals,
        use_function_settings,
    )

    from ingest_local.lambda_service import LambdaContext
    from lambdas import wait_sweep

    wait_sweep.wiring.reset()
    monkeypatch.setattr(wait_sweep, "wiring", type(wait_sweep.wiring)(wait_sweep.build_fanout))
    service = use_function_settings(monkeypatch, wait_sweep, "lambdas.wait_sweep.handler")
    pipeline.land("inbound/acme/confirmed/w1.csv", ROWS)
    pipeline.land("inbound/acme/batches/w2.csv", ROWS)
    capsys.readouterr()
    result = wait_sweep.handler({"source": "aws.events"}, LambdaContext("WaitSweepFunction"))
    out = capsys.readouterr().out
    assert result == {
        "FilesTimedOut": 0,
        "FilesReleased": 0,
        "FilesStillWaiting": 2,
        "forgotten": 0,
    }
    assert_json_logs_with_context(out, "WaitSweepFunction")
    points = emf_points(out)
    assert totals(points, service=service) == {
        "FilesTimedOut": 0,
        "FilesReleased": 0,
        "FilesStillWaiting": 2,
    }
    assert_emitted_as_documented(points, service)
