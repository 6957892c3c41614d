"""A file and its ``.sha256`` uploaded over OpenSSH ``sftp`` to ``ingest up`` (issue 12, §5),
in each order: the file waits for its sidecar, a sidecar that lands first is remembered, and
both files' records land with exact counts (the demo feeds' ``settlements``: ``wait_for:
checksum``). Uses the session's shared stack."""

from __future__ import annotations

import hashlib
from pathlib import Path

from stack_kit import RunningStack
from support_aws import wait_for
from test_local_stack_e2e import records_of

from ingest.adapters.ledger import Ledger

ROOT = "inbound/demo/settlements"
FIRST, FIRST_ROWS = f"{ROOT}/e2e-file-first.csv", 40
SECOND, SECOND_ROWS = f"{ROOT}/e2e-sidecar-first.csv", 25


def _settlements(path: Path, rows: int) -> Path:
    lines = ["settlement_id,amount"] + [f"E2E-{path.stem}-{i},{i}.10" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _sidecar(data: Path) -> Path:
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    sidecar = data.with_name(data.name + ".sha256")
    sidecar.write_text(f"{digest}  {data.name}\n")  # sha256sum's own output
    return sidecar


def test_a_file_and_its_sha256_in_either_order_land_their_records(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    first = _settlements(tmp_path / "e2e-file-first.csv", FIRST_ROWS)
    second = _settlements(tmp_path / "e2e-sidecar-first.csv", SECOND_ROWS)
    first_sidecar, second_sidecar = _sidecar(first), _sidecar(second)
    ledger = Ledger(local_stack.client("dynamodb"), local_stack.resources["ledger_table"])

    # the first file without its sidecar, the second file's sidecar without its file
    local_stack.sftp_batch(
        [
            "-mkdir settlements",
            f"put {first} settlements/{first.name}",
            f"put {second_sidecar} settlements/{second_sidecar.name}",
        ]
    )
    wait_for(
        lambda: (e := ledger.get_file(FIRST)) is not None and e.reason == "awaiting checksum",
        timeout=60,
        what="the first file to wait for its checksum",
    )
    wait_for(
        lambda: (
            (e := ledger.get_file(f"{SECOND}.sha256")) is not None
            and "remembered until the file lands" in (e.reason or "")
        ),
        timeout=60,
        what="the second file's sidecar to be remembered",
    )
    waiting = ledger.get_file(FIRST)
    assert waiting is not None and (waiting.status, waiting.chunks_done) == ("RECEIVED", 0)
    assert ledger.get_file(SECOND) is None
    assert records_of(local_stack, FIRST) == []

    local_stack.sftp_batch(
        [
            f"put {first_sidecar} settlements/{first_sidecar.name}",
            f"put {second} settlements/{second.name}",
        ]
    )
    done_first = local_stack.wait_for_file(FIRST)
    done_second = local_stack.wait_for_file(SECOND)
    for entry, rows, data in ((done_first, FIRST_ROWS, first), (done_second, SECOND_ROWS, second)):
        assert (entry["status"], entry["rows_ok"], entry["rows_rejected"]) == ("PROCESSED", rows, 0)
        assert entry["digest"] == f"sha256:{hashlib.sha256(data.read_bytes()).hexdigest()}"
        assert entry["confirmed_by"] == entry["key"] + ".sha256"
    assert len(records_of(local_stack, FIRST)) == FIRST_ROWS
    assert len(records_of(local_stack, SECOND)) == SECOND_ROWS
    # the sidecars are in the ledger as what they are, never as data
    by_key = {f["key"]: f for f in local_stack.status()}
    for key in (FIRST, SECOND):
        sidecar = by_key[f"{key}.sha256"]
        assert (sidecar["status"], sidecar["sidecar_for"], sidecar["rows_ok"]) == (
            "IGNORED",
            key,
            0,
        )
    assert records_of(local_stack, f"{FIRST}.sha256") == []
