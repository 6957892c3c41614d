"""A file replaced by a corrected upload, a header that lacks a required column, and the
honest account of rows written before a chunk failed."""

from __future__ import annotations

import gzip

ORDERS = "inbound/acme/orders/day.csv"


def test_a_corrected_upload_leaves_no_rejects_of_the_old_version(pipeline):
    pipeline.land(ORDERS, b"order_id,amount\n1,1.00\n2,oops\n3,3.00\n")
    pipeline.drain(timeout=60)
    assert pipeline.file(ORDERS).status == "PROCESSED_WITH_REJECTS"
    assert [r["line"] for r in pipeline.rejects(ORDERS)] == [3]

    pipeline.land(ORDERS, b"order_id,amount\n1,1.00\n2,2.00\n3,3.00\n")
    pipeline.drain(timeout=60)
    entry = pipeline.file(ORDERS)
    assert (entry.status, entry.rows_ok, entry.rows_rejected) == ("PROCESSED", 3, 0)
    assert pipeline.rejects(ORDERS) == []


def test_a_header_without_a_required_column_fails_the_file_with_the_reason(pipeline):
    pipeline.land(ORDERS, b"order_id,total\n1,1.00\n2,2.00\n")
    pipeline.land("inbound/acme/orders/good.csv", b"order_id,amount\n9,9.00\n")
    pipeline.drain(timeout=60)
    entry = pipeline.file(ORDERS)
    assert entry.status == "FAILED"
    assert "HeaderError" in (entry.reason or "")
    assert "['amount']" in (entry.reason or "")
    assert pipeline.file("inbound/acme/orders/good.csv").status == "PROCESSED"
    assert [i["pk"] for i in pipeline.items()] == ["ORDER#9"]


def test_a_failed_file_says_how_far_it_got(pipeline):
    rows = "".join(f"{i},{i}.00\n" for i in range(1, 2001)).encode()
    data = gzip.compress(b"order_id,amount\n" + rows)
    key = "inbound/acme/orders/cut.csv.gz"
    pipeline.land(key, data[: len(data) * 3 // 4])
    pipeline.drain(timeout=60)
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    assert "rows before it may have been written" in (entry.reason or "")
    written = pipeline.count_items()
    assert 0 < written < 2000


def test_a_header_longer_than_the_bounded_header_read(pipeline):
    pipeline.setenv("CHUNK_SIZE_BYTES", "120000")
    wide = "x" * (100 * 1024)  # one 100 KiB column name: longer than the 64 KiB header read
    rows = "".join(f"{i},{i},{i}.50\n" for i in range(4_000))
    data = f"{wide},order_id,amount\n{rows}".encode()
    assert len(data) > 120_000  # two chunks; the second fetches the header
    pipeline.land(ORDERS, data)
    pipeline.drain(timeout=300)
    entry = pipeline.file(ORDERS)
    assert (entry.status, entry.rows_ok, entry.chunks) == ("PROCESSED", 4_000, 2)
