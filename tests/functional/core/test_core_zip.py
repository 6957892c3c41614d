"""Zip archives end to end on moto: expanded next to themselves, members ingested by their own
events (fanout, then the processor), redelivered, held, linked back (issue 12, §3); the
refusals are test_core_zip_refusals.py."""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from typing import Any

import pytest
from conftest import FEEDS_YAML
from msgspec.structs import replace
from test_operator_cli import ingest  # noqa: F401  (the fixture: the CLI against this stack)
from zip_kit import MIB, build_zip

from ingest.adapters.ledger_envelopes import EnvelopeLedger
from ingest.domain.envelopes import OUTPUT_KEYS_IN_ENTRY

ARCHIVE = "inbound/acme/orders/batch.zip"
ROLE_ID = "AROATRANSFERUSERS"
HEADER = "order_id,amount,quantity,placed_at\n"

ZIP_FEEDS = (
    FEEDS_YAML
    + """
  - name: batches
    match: "inbound/{partner}/batches/**.csv"
    format: csv
    key: {pk: "BATCH#{order_id}", sk: "PARTNER#{partner}"}
    fields:
      order_id: {type: string, required: true}
      amount: {type: decimal, required: true}
  - name: small
    match: "inbound/{partner}/small/*.csv"
    format: csv
    zip: {max_members: 2, max_expanded_bytes: 2MiB, max_ratio: 50}
    key: {pk: "SMALL#{order_id}"}
    fields:
      order_id: {type: string, required: true}
"""
)


@pytest.fixture
def feeds_yaml() -> str:
    return ZIP_FEEDS


def orders(first: int, rows: int) -> bytes:
    body = "".join(f"{i},1.50,1,2026-11-01T00:00:00Z\n" for i in range(first, first + rows))
    return (HEADER + body).encode()


def outcomes(result: dict[str, Any]) -> list[str]:
    return [f["outcome"] for f in result["files"]]


def land_members(pipeline: Any, keys: list[str]) -> list[str]:
    """Deliver each member's own ObjectCreated event (moto's mock has no notifications)."""
    found: list[str] = []
    for key in keys:
        head = pipeline.s3.head_object(Bucket=pipeline.bucket, Key=key)
        result = pipeline.notify(
            key,
            size=head["ContentLength"],
            etag=head["ETag"],
            version=head.get("VersionId"),
            principal_id="AWS:AROAFANOUTFUNCTION:fanout",
        )
        found += outcomes(result)
    return found


def keys_under(pipeline: Any, prefix: str) -> list[str]:
    listed = pipeline.s3.list_objects_v2(Bucket=pipeline.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def assert_nothing_written(pipeline: Any, archive: str = ARCHIVE) -> None:
    directory = archive.rsplit("/", 1)[0] + "/"
    assert keys_under(pipeline, directory) == [archive]
    assert pipeline.s3.list_multipart_uploads(Bucket=pipeline.bucket).get("Uploads", []) == []
    assert pipeline.queue_depth() == 0


def test_nested_members_are_written_next_to_the_archive_and_their_records_land(pipeline):
    archive = "inbound/acme/batches/day1.zip"
    members = {
        "a.csv": orders(0, 3),
        "more/": b"",
        "more/b.csv": orders(100, 2),
        "more/deeper/c.csv.gz": gzip.compress(orders(200, 4)),
        "notes.txt": b"no feed owns this",
        "empty.csv": b"",
    }
    result = pipeline.land(archive, build_zip(members))
    assert outcomes(result) == ["EXPANDED"]
    expected = [
        "inbound/acme/batches/a.csv",
        "inbound/acme/batches/more/b.csv",
        "inbound/acme/batches/more/deeper/c.csv.gz",
        "inbound/acme/batches/notes.txt",
        "inbound/acme/batches/empty.csv",
    ]
    entry = pipeline.file(archive)
    assert (entry.status, entry.feed, entry.output_count, entry.outputs) == (
        "EXPANDED",
        "batches",
        5,
        expected,
    )
    assert keys_under(pipeline, "inbound/acme/batches/") == sorted([archive, *expected])
    body = pipeline.s3.get_object(Bucket=pipeline.bucket, Key=expected[1])["Body"].read()
    assert body == members["more/b.csv"]

    assert land_members(pipeline, expected) == ["QUEUED", "QUEUED", "QUEUED", "UNMATCHED", "QUEUED"]
    pipeline.drain(timeout=60)
    statuses = {key: (pipeline.file(key).status, pipeline.file(key).rows_ok) for key in expected}
    assert statuses == {
        expected[0]: ("PROCESSED", 3),
        expected[1]: ("PROCESSED", 2),
        expected[2]: ("PROCESSED", 4),
        expected[3]: ("UNMATCHED", 0),
        expected[4]: ("PROCESSED", 0),
    }
    assert pipeline.count_items() == 9
    links = EnvelopeLedger(pipeline.ledger).envelopes_of(expected[2])
    assert [(link["envelope"], link["step"]) for link in links] == [(archive, "EXPANDED")]
    assert pipeline.file(archive).status == "EXPANDED"  # its members' processing leaves it be


def test_a_redelivered_event_writes_nothing_twice(pipeline):
    data = build_zip({"a.csv": orders(0, 3), "b.csv": orders(10, 2)})
    resp = pipeline.put(ARCHIVE, data)

    def deliver() -> list[str]:
        return outcomes(
            pipeline.notify(ARCHIVE, size=len(data), etag=resp["ETag"], version=resp["VersionId"])
        )

    # the first attempt dies after the members are written, before the ledger says so
    from lambdas import fanout

    wired = fanout.wiring()
    envelopes = wired.ports.envelopes
    real = envelopes.keywords["ports"]

    class DiesAfterWriting:
        def record_outputs(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("the function's time ran out")

    broken = replace(real, records=DiesAfterWriting())
    fanout.wiring.use(
        replace(
            wired,
            ports=replace(wired.ports, envelopes=type(envelopes)(envelopes.func, ports=broken)),
        )
    )
    with pytest.raises(RuntimeError):
        deliver()
    members = ["inbound/acme/orders/a.csv", "inbound/acme/orders/b.csv"]
    assert pipeline.file(ARCHIVE).status == "RECEIVED"
    assert land_members(pipeline, members) == ["QUEUED", "QUEUED"]
    etags = [pipeline.s3.head_object(Bucket=pipeline.bucket, Key=k)["ETag"] for k in members]

    fanout.wiring.use(wired)  # Lambda's retry
    assert deliver() == ["EXPANDED"]
    assert [
        pipeline.s3.head_object(Bucket=pipeline.bucket, Key=k)["ETag"] for k in members
    ] == etags
    assert land_members(pipeline, members) == ["DUPLICATE", "DUPLICATE"]
    assert deliver() == ["DUPLICATE"]  # and once it is EXPANDED
    pipeline.drain(timeout=60)
    assert [pipeline.file(k).rows_ok for k in members] == [3, 2]
    assert pipeline.count_items() == 5
    entry = pipeline.file(ARCHIVE)
    assert (entry.status, entry.output_count, entry.outputs) == ("EXPANDED", 2, members)


def test_an_sftp_archive_is_held_until_transfer_confirms_it_and_its_members_are_not(pipeline):
    from test_core_fanout import transfer_completed

    pipeline.setenv("TRANSFER_ROLE_ID", ROLE_ID)
    data = build_zip({"a.csv": orders(0, 4)})
    result = pipeline.land(ARCHIVE, data, principal_id=f"AWS:{ROLE_ID}:acme-session")
    assert outcomes(result) == ["HELD"]
    assert keys_under(pipeline, "inbound/acme/orders/") == [ARCHIVE]
    etag = pipeline.s3.head_object(Bucket=pipeline.bucket, Key=ARCHIVE)["ETag"]
    confirmed = transfer_completed(pipeline.bucket, ARCHIVE, len(data), etag)
    assert outcomes(pipeline.fanout(confirmed)) == ["EXPANDED"]
    assert land_members(pipeline, ["inbound/acme/orders/a.csv"]) == ["QUEUED"]
    pipeline.drain(timeout=60)
    assert pipeline.file("inbound/acme/orders/a.csv").rows_ok == 4


def test_a_large_archive_keeps_its_first_keys_in_the_entry_and_the_rest_beside_it(pipeline):
    names = [f"m{i:04d}.txt" for i in range(OUTPUT_KEYS_IN_ENTRY + 20)]
    data = build_zip(dict.fromkeys(names, b"x"), compression=zipfile.ZIP_STORED)
    assert outcomes(pipeline.land(ARCHIVE, data)) == ["EXPANDED"]
    entry = pipeline.file(ARCHIVE)
    keys = [f"inbound/acme/orders/{n}" for n in names]
    assert entry.output_count == len(names)
    assert entry.outputs == keys[:OUTPUT_KEYS_IN_ENTRY]
    assert entry.etag is not None
    everything = EnvelopeLedger(pipeline.ledger).all_outputs(ARCHIVE, entry.etag, entry.outputs)
    assert everything == keys


def test_ingest_status_shows_the_chain_from_archive_to_records(pipeline, ingest):  # noqa: F811
    data = build_zip({"a.csv": orders(0, 3), "more/b.csv": orders(10, 2)})
    assert outcomes(pipeline.land(ARCHIVE, data)) == ["EXPANDED"]
    members = ["inbound/acme/orders/a.csv", "inbound/acme/orders/more/b.csv"]
    assert land_members(pipeline, members) == ["QUEUED", "UNMATCHED"]
    pipeline.drain(timeout=60)

    archive = json.loads(ingest("status", ARCHIVE, "--json").out)
    assert (archive["status"], archive["output_count"], archive["outputs"]) == (
        "EXPANDED",
        2,
        members,
    )
    assert archive["envelopes"] == []
    member = json.loads(ingest("status", members[0], "--json").out)
    assert (member["status"], member["rows_ok"]) == ("PROCESSED", 3)
    assert [(e["envelope"], e["step"]) for e in member["envelopes"]] == [(ARCHIVE, "EXPANDED")]
    assert member["envelopes"][0]["envelope_version"] == archive["etag"]
    listed = {f["key"]: f for f in json.loads(ingest("status", "--json").out)}
    assert listed[ARCHIVE]["outputs"] == members and "outputs" not in listed[members[0]]

    text = ingest("status", members[0]).out
    assert f"From: {ARCHIVE} (EXPANDED" in text
    text = ingest("status", ARCHIVE).out
    assert "expanded into 2 file(s):" in text and all(m in text for m in members)


def test_members_larger_than_the_read_window_and_a_part_arrive_intact(pipeline):
    big = os.urandom(20 * MIB + 123)  # stored: the archive spans three read windows
    data = build_zip({"a.bin": big, "b.csv": orders(0, 2)}, compression=zipfile.ZIP_STORED)
    assert outcomes(pipeline.land(ARCHIVE, data)) == ["EXPANDED"]
    got = pipeline.s3.get_object(Bucket=pipeline.bucket, Key="inbound/acme/orders/a.bin")
    assert got["Body"].read() == big
    assert got["ETag"].strip('"').endswith("-3")  # three 8 MiB parts
    body = pipeline.s3.get_object(Bucket=pipeline.bucket, Key="inbound/acme/orders/b.csv")["Body"]
    assert body.read() == orders(0, 2)
