"""The ledger's record of the versions a newer one replaced (ingest/adapters/ledger_versions.py).

A version replaced while it was processing, or after it was done, leaves a ``SUPERSEDED#``
record of what it had done, beside the new version's entry; the same version registered
again (a fanout redone, a duplicate S3 event) leaves none, and a race between two
registrations never loses one.
"""

from __future__ import annotations

from typing import Any

from ingest.adapters.ledger import Ledger
from ingest.adapters.ledger_versions import all_superseded, superseded_versions
from ingest.cli.status import status_json
from ingest.domain.files import FileEntry

KEY = "inbound/acme/orders/replaced.csv"


def start(ledger: Ledger, version: str, **extra: Any) -> str | None:
    return ledger.start_file(
        key=KEY, feed="orders", version=version, etag=version, size=10, chunks=2, **extra
    )


def test_a_processed_version_replaced_keeps_its_counts_beside_the_new_entry(pipeline):
    pipeline.land(KEY, b"order_id,amount\n1,1.00\n2,2.00\nx,\n")
    pipeline.drain()
    old = pipeline.file(KEY)
    assert (old.status, old.rows_ok, old.rows_rejected) == ("PROCESSED_WITH_REJECTS", 2, 1)

    pipeline.land(KEY, b"order_id,amount\n1,1.50\n")
    new = pipeline.file(KEY)
    (record,) = superseded_versions(pipeline.ledger, KEY)
    assert (record.version, record.superseded_by, record.status) == (
        old.version,
        new.version,
        "PROCESSED_WITH_REJECTS",
    )
    assert (record.rows_ok, record.rows_rejected, record.chunks_done) == (2, 1, 1)
    pipeline.drain()
    assert (pipeline.file(KEY).rows_ok, pipeline.file(KEY).rows_rejected) == (1, 0)
    assert all_superseded(pipeline.ledger) == {KEY: [record]}

    shown = status_json(pipeline.file(KEY), superseded_versions(pipeline.ledger, KEY))
    (replaced,) = shown["superseded"]
    assert replaced["version"] == old.version and replaced["superseded_by"] == new.version
    assert (replaced["rows_ok"], replaced["rows_rejected"]) == (2, 1)


def test_the_same_version_again_records_nothing(pipeline):
    ledger = pipeline.ledger
    first = start(ledger, "v1")
    again = start(ledger, "v1")  # a fanout redone while RECEIVED: a new ingestion, same version
    assert first and again and first != again
    assert pipeline.file(KEY).ingestion == again
    ledger.mark_queued(KEY, "v1", again)
    assert start(ledger, "v1") is None  # a duplicate S3 event of a queued version
    assert superseded_versions(ledger, KEY) == []


def test_versions_replaced_one_after_another_are_all_recorded_in_order(pipeline):
    ledger = pipeline.ledger
    for version in ("v1", "v2", "v3"):
        start(ledger, version)
    records = superseded_versions(ledger, KEY)
    assert [(r.version, r.superseded_by) for r in records] == [("v1", "v2"), ("v2", "v3")]


class RacingLedger(Ledger):
    """A ledger whose first read of the entry is followed, before its write, by another
    fanout registering ``rival``."""

    def __init__(self, real: Ledger, rival: str) -> None:
        super().__init__(real._db, real.table)
        self.rival: str | None = rival
        self.reads = 0

    def get_file(self, key: str) -> FileEntry | None:
        entry = super().get_file(key)
        self.reads += 1
        if self.rival is not None:
            rival, self.rival = self.rival, None
            start(Ledger(self._db, self.table), rival)
        return entry


def test_a_registration_that_loses_a_race_reads_again_and_records_the_winner(pipeline):
    start(pipeline.ledger, "v1")
    racing = RacingLedger(pipeline.ledger, rival="v2")
    assert start(racing, "v3") is not None
    assert racing.reads == 2  # the first write's condition failed on v2's entry
    assert pipeline.file(KEY).version == "v3"
    records = superseded_versions(pipeline.ledger, KEY)
    assert [(r.version, r.superseded_by) for r in records] == [("v1", "v2"), ("v2", "v3")]
