"""A newer version of a file always wins, whichever of its and an older version's chunks runs
first: the table ends with exactly the newer version's values, the ledger counts only it, and
the older version is recorded as superseded.

The older version's chunk is made slow with a port wrapper (its rows reach the real sink one
every few milliseconds), so that it is mid-write when the newer version lands and the newer
version's chunk starts at once, in another thread, through the real processor handler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from support_aws import wait_for

from ingest.adapters.ledger_versions import superseded_versions
from ingest.usecases import fencing
from ingest_local.lambda_service import in_process_invoker, sqs_event
from ingest_local.moto_fidelity import serialize_dynamodb_requests

KEY = "inbound/acme/orders/replaced.csv"
OLD, NEW = "11", "22"  # the cents of every amount: which version wrote an item


def orders(rows: int, cents: str) -> bytes:
    lines = "".join(f"{i},{i}.{cents}\n" for i in range(1, rows + 1))
    return f"order_id,amount\n{lines}".encode()


class PacedSink:
    """The real record sink; the rows of its ``paced``-th write reach it one every ``delay``
    seconds after the first ``head`` (a chunk that takes a while), and ``started`` is set once
    that write is under way."""

    def __init__(self, real: Any, *, paced: int = 1, head: int = 100, delay: float = 0.002):
        self.real, self.paced, self.head, self.delay = real, paced, head, delay
        self.calls = 0
        self.rows_given: list[int] = []
        self.started = threading.Event()

    def write(self, rows: Any, reject: Any, fence: Any = None) -> int:
        self.calls += 1
        if self.calls != self.paced:
            return int(self.real.write(rows, reject, fence))
        self.rows_given.append(0)

        def paced() -> Iterator[Any]:
            for n, row in enumerate(rows):
                if n == self.head:
                    self.started.set()
                if n >= self.head:
                    time.sleep(self.delay)
                self.rows_given[-1] = n + 1
                yield row

        try:
            return int(self.real.write(paced(), reject, fence))
        finally:
            self.started.set()


@pytest.fixture
def replacing(pipeline, monkeypatch):
    serialize_dynamodb_requests()  # moto's DynamoDB, as atomic as DynamoDB (as `ingest up`)
    # checks and waits at test speed; the design is the same at production's 5 s and 1 s
    monkeypatch.setattr(fencing, "CHECK_SECONDS", 0.1)
    monkeypatch.setattr(fencing, "WAIT_POLL", 0.05)
    return pipeline


def land_and_take(pipeline, data: bytes) -> tuple[str, list[dict[str, Any]]]:
    """Land a version of KEY; returns its ETag and its chunk messages, taken off the queue."""
    pipeline.land(KEY, data)
    etag = pipeline.file(KEY).version
    got = pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=600,
        AttributeNames=["All"],
    )["Messages"]
    return etag, got


def written(pipeline, order_id: int) -> bool:
    key = {"pk": {"S": f"ORDER#{order_id}"}, "sk": {"S": "PARTNER#acme"}}
    return "Item" in pipeline.ddb.get_item(TableName=pipeline.records_table, Key=key)


def process(pipeline, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The messages through the real processor handler, as Lambda's event source would."""
    from lambdas import processor

    invoke = in_process_invoker(processor.handler, "ProcessorFunction")
    response = invoke(sqs_event(messages, pipeline.queue_arn, "us-east-1"))
    assert response == {"batchItemFailures": []}
    return response


def in_thread(target: Any, *args: Any) -> threading.Thread:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(*args)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def joined(thread: threading.Thread) -> None:
    thread.join(timeout=120)
    assert not thread.is_alive(), "a processor invocation did not finish"
    assert thread.errors == []  # type: ignore[attr-defined]


def assert_newest_wins(pipeline, *, old: str, new: str, new_rows: int) -> dict[str, Any]:
    """The ledger counts only the newer version; the older one is recorded as superseded.
    Returns the table's items by order id."""
    entry = pipeline.file(KEY)
    assert (entry.version, entry.status) == (new, "PROCESSED")
    assert (entry.rows_ok, entry.rows_rejected, entry.chunks_done) == (new_rows, 0, entry.chunks)
    (record,) = superseded_versions(pipeline.ledger, KEY)
    assert (record.version, record.superseded_by) == (old, new)
    assert record.rows_ok == 0 and record.chunks_done == 0  # not counted
    items = {int(item["order_id"]): item for item in pipeline.items()}
    for order_id in range(1, new_rows + 1):
        assert items[order_id]["amount"] == Decimal(f"{order_id}.{NEW}"), order_id
    return items


def test_old_chunk_mid_write_when_the_new_version_lands(replacing):
    pipeline = replacing
    paced = PacedSink(None)
    pipeline.wire_processor(sink=lambda real: setattr(paced, "real", real) or paced)
    old, old_messages = land_and_take(pipeline, orders(2000, OLD))
    old_chunk = in_thread(process, pipeline, old_messages)
    assert paced.started.wait(30)

    new, new_messages = land_and_take(pipeline, orders(2000, NEW))
    process(pipeline, new_messages)  # at once: it waits for the old chunk's lease, not for us
    joined(old_chunk)

    items = assert_newest_wins(pipeline, old=old, new=new, new_rows=2000)
    assert len(items) == 2000
    assert paced.rows_given[0] < 2000  # the old chunk stopped mid-write when superseded


def test_new_chunk_mid_write_when_the_old_versions_chunk_arrives(replacing):
    pipeline = replacing
    paced = PacedSink(None)
    pipeline.wire_processor(sink=lambda real: setattr(paced, "real", real) or paced)
    old, old_messages = land_and_take(pipeline, orders(2000, OLD))
    new, new_messages = land_and_take(pipeline, orders(2000, NEW))
    new_chunk = in_thread(process, pipeline, new_messages)
    assert paced.started.wait(30)

    process(pipeline, old_messages)  # late: dropped before it writes a row
    joined(new_chunk)

    items = assert_newest_wins(pipeline, old=old, new=new, new_rows=2000)
    assert len(items) == 2000
    assert paced.calls == 1  # the old chunk never reached the sink


def test_a_shorter_new_version_leaves_the_rows_only_the_old_one_had(replacing):
    """Rows whose keys only the old version had are not deleted (docs/architecture.md says
    why, and what to do): they keep the old version's values, and the ledger counts none of
    them."""
    pipeline = replacing
    paced = PacedSink(None, head=1000)
    pipeline.wire_processor(sink=lambda real: setattr(paced, "real", real) or paced)
    old, old_messages = land_and_take(pipeline, orders(2000, OLD))
    old_chunk = in_thread(process, pipeline, old_messages)
    assert paced.started.wait(30)
    # the old chunk has written past the newer version's last row when the newer one lands
    wait_for(lambda: written(pipeline, 600), timeout=60, what="the old chunk to reach row 600")

    new, new_messages = land_and_take(pipeline, orders(500, NEW))
    process(pipeline, new_messages)
    joined(old_chunk)

    items = assert_newest_wins(pipeline, old=old, new=new, new_rows=500)
    left = sorted(order_id for order_id in items if order_id > 500)
    assert all(items[i]["amount"] == Decimal(f"{i}.{OLD}") for i in left)
    # some, and only rows the old chunk wrote before it was superseded: never all of them
    assert 0 < len(left) <= paced.rows_given[0] - 500
    assert len(left) < 1500


class LandsWhenWritten:
    """The real record sink; once its first write returns, ``then`` runs (a newer version
    lands between the old chunk's last row and its reject file)."""

    def __init__(self, real: Any, then: Any) -> None:
        self.real, self.then = real, then

    def write(self, rows: Any, reject: Any, fence: Any = None) -> int:
        written = int(self.real.write(rows, reject, fence))
        then, self.then = self.then, None
        if then is not None:
            then()
        return written


def test_an_old_chunk_done_writing_as_the_new_version_lands_uploads_no_rejects(replacing):
    pipeline = replacing
    old_data = orders(50, OLD) + b"51,not-a-number\n"
    new_data = orders(50, NEW)
    landed: dict[str, Any] = {}

    def land_new() -> None:
        landed["new"] = land_and_take(pipeline, new_data)

    pipeline.wire_processor(sink=lambda real: LandsWhenWritten(real, land_new))
    old, old_messages = land_and_take(pipeline, old_data)
    process(pipeline, old_messages)  # dropped as superseded, before its reject file
    new, new_messages = landed["new"]
    process(pipeline, new_messages)

    assert pipeline.rejects(KEY) == []  # not the old version's bad row
    assert_newest_wins(pipeline, old=old, new=new, new_rows=50)
