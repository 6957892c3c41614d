"""Fanout end to end: duplicate events, unmatched keys, temp names, re-uploads, gzip and JSON
Lines, URL-encoded keys, and SFTP uploads held until Transfer confirms them."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

from ingest_local.lambda_service import s3_object_created_event

REGION = "us-east-1"  # the pipeline fixture's
KEY = "inbound/acme/orders/o.csv"
ROLE_ID = "AROATRANSFERUSERS"


def orders(rows: int, *, start: int = 0, amount: str = "1.50") -> bytes:
    body = "".join(f"{i},{amount},1,2026-11-01T00:00:00Z\n" for i in range(start, start + rows))
    return ("order_id,amount,quantity,placed_at\n" + body).encode()


def outcomes(result: dict[str, Any]) -> list[str]:
    return [f["outcome"] for f in result["files"]]


def test_duplicate_s3_event_is_queued_once(pipeline):
    data = orders(20)
    resp = pipeline.put(KEY, data)
    event = s3_object_created_event(
        pipeline.bucket, KEY, size=len(data), etag=resp["ETag"], version_id=resp["VersionId"]
    )
    assert outcomes(pipeline.fanout(event)) == ["QUEUED"]
    assert outcomes(pipeline.fanout(event)) == ["DUPLICATE"]
    assert pipeline.queue_depth() == 1
    pipeline.drain(timeout=30)
    # and once more after the file is done: still nothing queued, counters untouched
    assert outcomes(pipeline.fanout(event)) == ["DUPLICATE"]
    assert pipeline.queue_depth() == 0
    entry = pipeline.file(KEY)
    assert (entry.status, entry.rows_ok, entry.chunks, entry.chunks_done) == ("PROCESSED", 20, 1, 1)
    assert pipeline.count_items() == 20


def test_unmatched_key_is_recorded_not_raised(pipeline, capsys):
    key = "inbound/acme/invoices/i.pdf"
    result = pipeline.land(key, b"%PDF-1.7")
    assert outcomes(result) == ["UNMATCHED"]
    entry = pipeline.file(key)
    assert (entry.status, entry.reason, entry.size) == ("UNMATCHED", "no feed matches this key", 8)
    assert pipeline.queue_depth() == 0
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert any(m.get("FilesUnmatched") == [1.0] for m in metrics)


def test_temp_and_marker_names_are_ignored(pipeline):
    names = [
        "inbound/acme/orders/o.csv.part",
        "inbound/acme/orders/o.csv.filepart",
        "inbound/acme/orders/o.csv.tmp",
        "inbound/acme/orders/.~lock.o.csv#",
        "inbound/acme/orders/",
    ]
    for key in names:
        data = b"" if key.endswith("/") else orders(3)
        assert outcomes(pipeline.land(key, data)) == ["IGNORED"]
    assert pipeline.queue_depth() == 0
    assert pipeline.ledger.list_files() == []


def test_url_encoded_keys_are_decoded(pipeline):
    key = "inbound/acme/orders/a+b c%2B(1).csv"  # S3 sends this as a%2Bb+c%252B%281%29.csv
    pipeline.land(key, orders(5))
    pipeline.drain(timeout=30)
    assert pipeline.file(key).status == "PROCESSED"
    assert {i["_source"] for i in pipeline.items()} == {f"s3://{pipeline.bucket}/{key}"}


def test_reupload_with_new_content_is_ingested_again(pipeline):
    pipeline.land(KEY, orders(10, amount="1.00"))
    pipeline.drain(timeout=30)
    first = pipeline.file(KEY)
    pipeline.land(KEY, orders(15, amount="2.00"))
    second = pipeline.file(KEY)
    assert second.version != first.version
    assert second.status == "QUEUED"
    pipeline.drain(timeout=30)
    entry = pipeline.file(KEY)
    # counters are those of the new version alone
    assert (entry.status, entry.rows_ok, entry.chunks_done) == ("PROCESSED", 15, 1)
    items = pipeline.items()
    assert len(items) == 15
    assert {i["amount"] for i in items} == {Decimal("2.00")}


def test_reupload_of_identical_bytes_is_a_duplicate(pipeline):
    pipeline.land(KEY, orders(10))
    pipeline.drain(timeout=30)
    assert outcomes(pipeline.land(KEY, orders(10))) == ["DUPLICATE"]
    assert pipeline.queue_depth() == 0


def test_reupload_before_the_first_is_processed_only_lands_the_new_content(pipeline):
    pipeline.setenv("CHUNK_SIZE_BYTES", "256")
    pipeline.land(KEY, orders(40, amount="1.00"))
    old_chunks = pipeline.queue_depth()
    pipeline.land(KEY, orders(30, start=100, amount="2.00"))
    assert pipeline.queue_depth() > old_chunks > 1
    pipeline.drain(timeout=30)
    entry = pipeline.file(KEY)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED", 30, 0)
    assert entry.chunks_done == entry.chunks
    # the superseded version's chunks were dropped, not written over the new records
    assert sorted(int(i["order_id"]) for i in pipeline.items()) == list(range(100, 130))


def test_gzip_is_one_chunk_whatever_its_size(pipeline):
    pipeline.setenv("CHUNK_SIZE_BYTES", "1024")
    key = "inbound/acme/orders/big.csv.gz"
    data = orders(3000)
    result = pipeline.land(key, data, gz=True)
    assert len(gzip.compress(data)) > 1024
    assert result["files"][0]["chunks"] == 1
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert (entry.status, entry.rows_ok, entry.chunks, entry.chunks_done) == (
        "PROCESSED",
        3000,
        1,
        1,
    )
    assert pipeline.count_items() == 3000


def test_jsonl_end_to_end_in_several_chunks(pipeline):
    pipeline.setenv("CHUNK_SIZE_BYTES", "512")
    key = "inbound/acme/events/e.jsonl"
    lines = []
    for i in range(200):
        lines.append(json.dumps({"event_id": f"e{i}", "kind": "click", "value": 0.1 * (i % 3)}))
        if i % 7 == 0:
            lines.append("")  # blank lines are skipped, not rejected
    lines.append('{"event_id": "broken"')
    pipeline.land(key, "\r\n".join(lines).encode())
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert entry.chunks > 4
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED_WITH_REJECTS", 200, 1)
    items = {i["event_id"]: i for i in pipeline.items()}
    assert len(items) == 200
    assert items["e1"]["value"] == Decimal("0.1")
    assert items["e0"]["_line"] == 1 and items["e1"]["_line"] == 3  # a blank line after e0
    (reject,) = pipeline.rejects(key)
    assert reject["line"] == len(lines)
    assert reject["reason"].startswith("invalid JSON")


def transfer_completed(bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """Transfer Family's EventBridge event for a finished SFTP upload to an S3 server."""
    return {
        "version": "0",
        "id": "b1c2d3e4-0000-4000-8000-000000000001",
        "detail-type": "SFTP Server File Upload Completed",
        "source": "aws.transfer",
        "account": "123456789012",
        "time": "2026-11-23T08:00:00Z",
        "region": REGION,
        "resources": ["arn:aws:transfer:us-east-1:123456789012:server/s-0123456789abcdef0"],
        "detail": {
            "failure-code": None,
            "status-code": "COMPLETED",
            "start-timestamp": "2026-11-23T07:59:58.000Z",
            "end-timestamp": "2026-11-23T08:00:00.000Z",
            "source-ip": "127.0.0.1",
            "server-id": "s-0123456789abcdef0",
            "username": "acme",
            "session-id": "0a1b2c3d4e5f6a7b",
            "file-path": f"/{bucket}/{key}",
            "bytes": size,
            "etag": etag,
        },
    }


def test_sftp_upload_is_held_until_transfer_confirms_it(pipeline):
    pipeline.setenv("TRANSFER_ROLE_ID", ROLE_ID)
    data = orders(25)
    # S3 announces the object while the SFTP session may still be writing it
    result = pipeline.land(KEY, data, principal_id=f"AWS:{ROLE_ID}:acme-session")
    assert outcomes(result) == ["HELD"]
    entry = pipeline.file(KEY)
    assert (entry.status, entry.reason) == ("RECEIVED", "awaiting SFTP upload completion")
    assert pipeline.queue_depth() == 0

    etag = pipeline.s3.head_object(Bucket=pipeline.bucket, Key=KEY)["ETag"]
    assert outcomes(pipeline.fanout(transfer_completed(pipeline.bucket, KEY, len(data), etag))) == [
        "QUEUED"
    ]
    pipeline.drain(timeout=30)
    entry = pipeline.file(KEY)
    assert (entry.status, entry.rows_ok, entry.reason) == ("PROCESSED", 25, None)
    # a late duplicate of either event changes nothing
    assert outcomes(pipeline.fanout(transfer_completed(pipeline.bucket, KEY, len(data), etag))) == [
        "DUPLICATE"
    ]
    assert pipeline.queue_depth() == 0


def test_uploads_by_other_principals_are_not_held(pipeline):
    pipeline.setenv("TRANSFER_ROLE_ID", ROLE_ID)
    result = pipeline.land(KEY, orders(5), principal_id="AWS:AROAOPERATOR:someone")
    assert outcomes(result) == ["QUEUED"]


def test_upload_completed_event_through_sqs_releases_the_held_file(pipeline):
    pipeline.setenv("TRANSFER_ROLE_ID", ROLE_ID)
    data = orders(5)
    pipeline.land(KEY, data, principal_id=f"AWS:{ROLE_ID}:acme-session")
    etag = pipeline.s3.head_object(Bucket=pipeline.bucket, Key=KEY)["ETag"]
    wrapped = {
        "Records": [
            {
                "messageId": "1",
                "body": json.dumps(transfer_completed(pipeline.bucket, KEY, 5, etag)),
            }
        ]
    }
    assert outcomes(pipeline.fanout(wrapped)) == ["QUEUED"]
    pipeline.drain(timeout=30)
    assert pipeline.file(KEY).status == "PROCESSED"


def test_empty_and_header_only_files_are_processed_with_no_rows(pipeline):
    for key, data in [
        ("inbound/acme/orders/empty.csv", b""),
        ("inbound/acme/orders/header-only.csv", b"order_id,amount,quantity,placed_at\r\n"),
        ("inbound/acme/events/empty.jsonl", b"\n\n"),
    ]:
        assert outcomes(pipeline.land(key, data)) == ["QUEUED"]
    pipeline.drain(timeout=30)
    entries = {
        e.key: (e.status, e.rows_ok, e.rows_rejected, e.chunks_done)
        for e in pipeline.ledger.list_files()
    }
    assert entries == {
        "inbound/acme/events/empty.jsonl": ("PROCESSED", 0, 0, 1),
        "inbound/acme/orders/empty.csv": ("PROCESSED", 0, 0, 1),
        "inbound/acme/orders/header-only.csv": ("PROCESSED", 0, 0, 1),
    }
    assert pipeline.count_items() == 0


def test_upload_completed_before_the_s3_event_queues_once(pipeline):
    """EventBridge and S3 notifications are not ordered: the completion may come first."""
    pipeline.setenv("TRANSFER_ROLE_ID", ROLE_ID)
    data = orders(7)
    resp = pipeline.put(KEY, data)
    completed = transfer_completed(pipeline.bucket, KEY, len(data), resp["ETag"])
    assert outcomes(pipeline.fanout(completed)) == ["QUEUED"]
    late = pipeline.notify(
        KEY,
        size=len(data),
        etag=resp["ETag"],
        version=resp["VersionId"],
        principal_id=f"AWS:{ROLE_ID}:acme-session",
    )
    assert outcomes(late) == ["DUPLICATE"]
    pipeline.drain(timeout=30)
    entry = pipeline.file(KEY)
    assert (entry.status, entry.rows_ok, entry.chunks_done) == ("PROCESSED", 7, 1)
    assert pipeline.count_items() == 7
