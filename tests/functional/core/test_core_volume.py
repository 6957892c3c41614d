"""Volume: a 30,000-row CSV split into a dozen chunks lands exactly 30,000 items.

Marked slow: in-process moto writes roughly 2,000-4,000 items/s here, so the test takes about
15 s on an idle 2-core machine (it had 100,000 rows and took two minutes under load; what it
checks needs chunk boundaries, not volume: the processor's own speed is measured by
bench/processor.py, and bench/processor.py runs 1 GiB).
"""

from __future__ import annotations

import pytest

ROWS = 30_000
KEY = "inbound/acme/bulk/orders-100k.csv"
CHUNK = 96 * 1024


@pytest.fixture
def feeds_yaml(feeds_yaml: str) -> str:
    """The default feeds plus a bulk feed whose files are split into 96 KiB chunks."""
    return (
        feeds_yaml
        + """
  - name: bulk
    match: "inbound/{partner}/bulk/*.csv"
    format: csv
    chunk_size: 96KiB
    key: {pk: "ORDER#{order_id}", sk: "PARTNER#{partner}"}
    fields:
      order_id: {type: int, required: true}
      amount: {type: decimal, required: true}
      customer: {type: string, required: true}
"""
    )


def row(i: int) -> str:
    # varying widths, so that chunk boundaries fall at every position within a row
    return f'{i},{i % 997}.{i % 100:02d},"Customer {i % 37}, {"x" * (i % 11)}"'


@pytest.mark.slow
def test_30k_rows_in_a_dozen_chunks_land_exactly(pipeline):
    data = ("order_id,amount,customer\r\n" + "\r\n".join(map(row, range(ROWS)))).encode()
    expected_chunks = -(-len(data) // CHUNK)
    assert expected_chunks >= 10

    result = pipeline.land(KEY, data)
    assert result["files"][0]["chunks"] == expected_chunks
    drained = pipeline.drain(timeout=240)
    assert drained.failed == 0

    entry = pipeline.file(KEY)
    assert (
        entry.status,
        entry.feed,
        entry.size,
        entry.rows_ok,
        entry.rows_rejected,
        entry.chunks,
        entry.chunks_done,
    ) == ("PROCESSED", "bulk", len(data), ROWS, 0, expected_chunks, expected_chunks)
    assert pipeline.rejects(KEY) == []
    # every row has its own key, so 30,000 items and 30,000 counted rows with no rejects
    # means each row was written once: none lost, none duplicated, none split in two
    assert pipeline.count_items() == ROWS

    # the rows around every chunk boundary landed whole, with their file-wide line numbers
    offsets = [0]
    for line in data.split(b"\r\n"):
        offsets.append(offsets[-1] + len(line) + 2)
    around = set()
    for boundary in range(CHUNK, len(data), CHUNK):
        straddler = max(n for n, start in enumerate(offsets) if start <= boundary) - 1
        around.update(i for i in range(straddler - 2, straddler + 3) if 0 <= i < ROWS)
    around.update({0, ROWS - 1})
    keys = [{"pk": {"S": f"ORDER#{i}"}, "sk": {"S": "PARTNER#acme"}} for i in sorted(around)]
    got = pipeline.ddb.batch_get_item(RequestItems={pipeline.records_table: {"Keys": keys}})
    items = {int(i["order_id"]["N"]): i for i in got["Responses"][pipeline.records_table]}
    assert sorted(items) == sorted(around)
    for i, item in items.items():
        assert item["_line"]["N"] == str(i + 2)
        assert item["amount"]["N"] == f"{i % 997}.{i % 100:02d}"
        assert item["customer"]["S"] == f"Customer {i % 37}, {'x' * (i % 11)}"
        assert item["_source"]["S"] == f"s3://{pipeline.bucket}/{KEY}"
