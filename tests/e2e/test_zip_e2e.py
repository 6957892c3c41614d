"""A zip archive uploaded over SFTP to ``ingest up`` (issue 12, §3): expanded next to itself,
each member ingested by its own S3 event, records with exact counts, and the chain in
``ingest status``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from stack_kit import RunningStack
from test_local_stack_e2e import orders_csv, records_of

ARCHIVE = "inbound/demo/orders/e2e-batch.zip"


def test_a_zip_over_sftp_is_expanded_and_its_members_records_land(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    archive = tmp_path / "e2e-batch.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as members:
        members.write(orders_csv(tmp_path / "e2e-zip-a.csv", 30), "e2e-zip-a.csv")
        members.write(orders_csv(tmp_path / "e2e-zip-b.csv", 20, bad=2), "e2e-zip-b.csv")
        members.write(orders_csv(tmp_path / "e2e-zip-c.csv", 5), "nested/e2e-zip-c.csv")
    local_stack.sftp_batch(["-mkdir orders", f"put {archive} orders/e2e-batch.zip"])

    entry = local_stack.wait_for_file(ARCHIVE)
    members = [
        "inbound/demo/orders/e2e-zip-a.csv",
        "inbound/demo/orders/e2e-zip-b.csv",
        "inbound/demo/orders/nested/e2e-zip-c.csv",
    ]
    assert (entry["status"], entry["output_count"], entry["outputs"]) == ("EXPANDED", 3, members)
    a = local_stack.wait_for_file(members[0])
    b = local_stack.wait_for_file(members[1])
    c = local_stack.wait_for_file(members[2])  # orders/*.csv is one directory deep
    assert (a["status"], a["rows_ok"], a["rows_rejected"]) == ("PROCESSED", 30, 0)
    assert (b["status"], b["rows_ok"], b["rows_rejected"]) == ("PROCESSED_WITH_REJECTS", 20, 2)
    assert c["status"] == "UNMATCHED"
    assert len(records_of(local_stack, members[0])) == 30
    assert len(records_of(local_stack, members[1])) == 20
    story = json.loads(local_stack.ingest("status", members[0], "--json").stdout)
    assert [link["envelope"] for link in story["envelopes"]] == [ARCHIVE]
