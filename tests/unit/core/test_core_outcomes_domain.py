"""Receipts' keys and contents, the file events and which ledger changes are told (no AWS)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from msgspec.structs import replace

from ingest.domain.envelopes import EnvelopeKind
from ingest.domain.files import FileEntry, FileStatus
from ingest.domain.notifications import FINAL_STATUSES, event_id, file_event, rejects_ratio
from ingest.domain.receipts import (
    RECEIPTS_PREFIX,
    history_key,
    partner_path,
    receipt_document,
    receipt_key,
    render_receipt,
)
from ingest.usecases.outcomes import reached_final
from ingest_local.deploy import load_template

ROOT = Path(__file__).resolve().parents[3]
ENTRY = FileEntry(
    key="inbound/acme/orders/2026/o.csv",
    status="PROCESSED_WITH_REJECTS",
    feed="orders",
    version="e1",
    etag="e1",
    rows_ok=3,
    rows_rejected=1,
    ingestion="i1",
    received_at=1_764_590_400.0,
    updated_at=1_764_590_460.0,
)


@pytest.mark.parametrize(
    ("key", "plain", "history"),
    [
        (
            "inbound/acme/orders/2026/o.csv",
            "receipts/acme/orders/2026/o.csv.json",
            "receipts/acme/.history/orders/2026/o.csv.e1.json",
        ),
        ("inbound/acme/o.csv", "receipts/acme/o.csv.json", "receipts/acme/.history/o.csv.e1.json"),
        ("inbound/acme", None, None),
        ("inbound/acme/", None, None),
        ("inbound//o.csv", None, None),
        ("inbound/acme/dir/", None, None),
        ("outside/acme/o.csv", None, None),
        ("receipts/acme/o.csv.json", None, None),
    ],
)
def test_receipt_keys(key: str, plain: str | None, history: str | None) -> None:
    assert receipt_key(key) == plain
    assert history_key(key, '"e1"') == history
    if plain is not None:
        assert plain.startswith(RECEIPTS_PREFIX) and not plain.startswith("inbound/")
        assert receipt_key(key, "csv") == plain.removesuffix(".json") + ".csv"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json, csv"):
        receipt_key("inbound/acme/o.csv", "xml")


def test_every_final_status_is_told_and_no_other() -> None:
    ongoing = {FileStatus.RECEIVED, FileStatus.QUEUED, FileStatus.PROCESSING, FileStatus.IGNORED}
    expected_files = {"MISSING", "LATE"}  # the expected-files function tells those itself
    assert {str(s) for s in FileStatus} - ongoing - expected_files == FINAL_STATUSES
    assert {k.value for k in EnvelopeKind} <= FINAL_STATUSES


def test_the_stream_mapping_filter_names_exactly_the_final_statuses() -> None:
    tpl = load_template(ROOT / "template.yaml")
    props = tpl["Resources"]["OutcomesStreamMapping"]["Properties"]
    (only,) = props["FilterCriteria"]["Filters"]
    pattern = json.loads(only["Pattern"])
    assert pattern["dynamodb"]["Keys"] == {"sk": {"S": ["FILE"]}}
    assert set(pattern["dynamodb"]["NewImage"]["status"]["S"]) == FINAL_STATUSES


def test_which_changes_are_told() -> None:
    queued = replace(ENTRY, status="QUEUED")
    assert reached_final(None, ENTRY) and reached_final(queued, ENTRY)
    assert not reached_final(ENTRY, queued) and not reached_final(ENTRY, None)
    assert not reached_final(ENTRY, replace(ENTRY, updated_at=2e9))  # same outcome, touched
    assert reached_final(ENTRY, replace(ENTRY, version="e2", etag="e2"))  # another version
    assert reached_final(ENTRY, replace(ENTRY, ingestion="i2"))  # the same one sent again
    assert reached_final(ENTRY, replace(ENTRY, received_at=2e9))  # received again
    assert not reached_final(None, replace(ENTRY, status="MISSING"))


def test_the_event_of_a_file() -> None:
    event = file_event(ENTRY, bucket="b", receipt="receipts/acme/orders/2026/o.csv.json")
    assert event.detail_type == "sftp-ingest File Processed With Rejects"
    assert event.resources == ("arn:aws:s3:::b/inbound/acme/orders/2026/o.csv",)
    d = event.detail
    assert (d["partner"], d["feed"], d["rows-ok"], d["rows-rejected"]) == ("acme", "orders", 3, 1)
    assert d["rejects-ratio"] == 0.25 and d["received-at"] == "2025-12-01T12:00:00.000Z"
    assert d["event-id"] == event_id(ENTRY) == event_id(replace(ENTRY, updated_at=1.0))
    assert event_id(replace(ENTRY, ingestion="i2")) != d["event-id"]
    assert rejects_ratio(0, 0) == 0.0
    json.dumps(d)  # plain JSON


def test_receipt_document_and_csv() -> None:
    rejects = [{"line": n, "reason": f"bad {n}", "raw": f"row {n}"} for n in range(2, 105)]
    doc = receipt_document(
        ENTRY,
        received_at="R",
        finished_at="F",
        rejects=rejects,
        truncated=False,
        include_raw=False,
    )
    assert doc["file"] == partner_path(ENTRY.key) == "/orders/2026/o.csv"
    assert len(doc["rejects"]) == 100 and doc["rejects_truncated"] is True
    assert doc["rejects"][0] == {"line": 2, "reason": "bad 2"}
    assert json.loads(render_receipt(doc, "json")) == doc
    raw = receipt_document(
        replace(ENTRY, status="FAILED", reason="corrupt"),
        received_at=None,
        finished_at=None,
        rejects=rejects[:1],
        truncated=False,
        include_raw=True,
    )
    assert raw["reason"] == "corrupt" and raw["rejects"] == [rejects[0]]
    table = list(csv.DictReader(io.StringIO(render_receipt(raw, "csv", include_raw=True).decode())))
    assert table == [
        {
            "file": "/orders/2026/o.csv",
            "status": "FAILED",
            "received_at": "",
            "finished_at": "",
            "rows_ok": "3",
            "rows_rejected": "1",
            "reason": "corrupt",
            "rejects_truncated": "false",
            "line": "2",
            "reject_reason": "bad 2",
            "raw": "row 2",
        }
    ]
    empty = receipt_document(
        replace(ENTRY, rows_rejected=0),
        received_at="R",
        finished_at="F",
        rejects=[],
        truncated=False,
        include_raw=False,
    )
    (row,) = csv.DictReader(io.StringIO(render_receipt(empty, "csv").decode()))
    assert (row["line"], row["reject_reason"], "raw" in row) == ("", "", False)
