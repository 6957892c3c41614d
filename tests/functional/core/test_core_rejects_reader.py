"""``ingest rejects``' reader: a file's rejected rows from every chunk's reject file, by line,
with the limit it was asked for."""

from __future__ import annotations

from ingest.adapters.s3 import S3Store
from ingest.usecases.inspection import read_rejects

KEY = "inbound/acme/orders/mixed.csv"


def mixed(rows: int) -> bytes:
    """Every 7th row's amount is not a number."""
    lines = [f"{i},{'oops' if i % 7 == 0 else f'{i}.50'}" for i in range(1, rows + 1)]
    return ("order_id,amount\n" + "\n".join(lines) + "\n").encode()


def test_rejects_of_every_chunk_in_line_order_and_limited(pipeline):
    pipeline.setenv("CHUNK_SIZE_BYTES", "2000")  # several chunks, several reject files
    pipeline.land(KEY, mixed(1000))
    pipeline.drain()
    entry = pipeline.file(KEY)
    assert entry.chunks > 3 and entry.rows_rejected == 1000 // 7

    store = S3Store(pipeline.s3)
    everything = read_rejects(store, pipeline.bucket, KEY, limit=None)
    assert len(everything.files) > 3  # one per chunk that had rejects
    assert all(f.startswith(f"s3://{pipeline.bucket}/rejects/{KEY}/") for f in everything.files)
    assert [r["line"] for r in everything.rows] == [i + 1 for i in range(7, 1001, 7)]
    assert everything.rows[0] == {
        "line": 8,
        "reason": "field 'amount': not a decimal: 'oops'",
        "raw": "7,oops",
    }
    assert not everything.truncated

    first = read_rejects(store, pipeline.bucket, KEY, limit=20)
    assert first.rows == everything.rows[:20] and first.truncated
    assert read_rejects(store, pipeline.bucket, "inbound/acme/orders/none.csv", limit=5).rows == []
