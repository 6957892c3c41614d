"""What partners actually send (issue 12), uploaded over OpenSSH ``sftp`` to one ``ingest up``:
a bank's fixed-width payments, a retailer's xlsx stock count, a PGP-encrypted CSV, and the
envelopes of §6 that combine: ``x.csv.gz.pgp`` (decrypted, then gunzipped while parsed) and
``batch.zip.pgp`` (decrypted, then expanded, one member ``*.csv.gz``). Each kind's records
land with exact counts, and ``ingest status KEY --json`` tells each step's entry (DECRYPTED →
EXPANDED → PROCESSED) with its outputs, and each file's chain back to what the partner sent.

One stack for the module, every file in one SFTP session; the PGP key is made here with
pysequoia and stored with ``ingest partners set-pgp-key``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from stack_kit import REPO, TERMINAL, RunningStack, cli_env, launch
from support_aws import wait_for
from support_deliveries import (
    PAYMENTS_FEED,
    STOCK_FEED,
    build_zip,
    encrypt,
    payments_file,
    pgp_key,
    stock_workbook,
)
from test_local_stack_e2e import orders_csv, records_of

from ingest.adapters.ledger import Ledger
from ingest.cli import main as cli_main

PARTNER = "demo"
ROOT = f"inbound/{PARTNER}"
PAYMENTS, PAYMENT_ROWS = f"{ROOT}/payments/e2e-pay.txt", 60
STOCK, STOCK_ROWS = f"{ROOT}/stock/e2e-stock.xlsx", 120
PGP = f"{ROOT}/orders/e2e-pgp.csv.pgp"
GZ_PGP = f"{ROOT}/orders/e2e-pgz.csv.gz.pgp"
ZIP_PGP = f"{ROOT}/orders/e2e-pzip.zip.pgp"
ZIP = f"{ROOT}/orders/e2e-pzip.zip"
MEMBERS = [f"{ROOT}/orders/e2e-pzip-a.csv", f"{ROOT}/orders/e2e-pzip-b.csv.gz"]


def _orders(tmp: Path, name: str, rows: int, *, bad: int = 0) -> bytes:
    return orders_csv(tmp / name, rows, bad=bad).read_bytes()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """``ingest up`` with the demo feeds, payments and stock; partner ``demo``."""
    state = tmp_path_factory.mktemp("deliveries-stack")
    feeds = state / "feeds.yaml"
    feeds.write_text((REPO / "fixtures" / "feeds.yaml").read_text() + PAYMENTS_FEED + STOCK_FEED)
    running = launch(state, "--demo-partner", "--feeds", str(feeds))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def delivered(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> RunningStack:
    """Every kind uploaded in one ``sftp`` session, once the partner's PGP key is stored."""
    tmp = tmp_path_factory.mktemp("deliveries")
    key = pgp_key("demo partner <pgp@demo.example>")
    (tmp / "demo.asc").write_text(str(key))
    stored = ingest_here(
        stack, "partners", "set-pgp-key", PARTNER, "--private-key", str(tmp / "demo.asc")
    )
    assert f"aws/transfer/{stack.resources['server_id']}/{PARTNER}" in stored

    gz_member = gzip.compress(_orders(tmp, "e2e-pzip-b.csv", 12, bad=1))
    archive = build_zip(
        {"e2e-pzip-a.csv": _orders(tmp, "e2e-pzip-a.csv", 10), "e2e-pzip-b.csv.gz": gz_member}
    )
    files = {
        "payments/e2e-pay.txt": payments_file(PAYMENT_ROWS, PAYMENT_ROWS, bad={3}),
        "stock/e2e-stock.xlsx": stock_workbook(STOCK_ROWS),
        "orders/e2e-pgp.csv.pgp": encrypt(_orders(tmp, "e2e-pgp.csv", 25), key),
        "orders/e2e-pgz.csv.gz.pgp": encrypt(gzip.compress(_orders(tmp, "e2e-pgz.csv", 15)), key),
        "orders/e2e-pzip.zip.pgp": encrypt(archive, key, armor=True),
    }
    for remote, data in files.items():
        (tmp / remote.replace("/", "--")).write_bytes(data)
    commands = ["-mkdir payments", "-mkdir stock", "-mkdir orders"]
    commands += [f"put {tmp / r.replace('/', '--')} {r}" for r in files]
    stack.sftp_batch(commands)
    return stack


#: Every file the deliveries become, each step's: what the tests read the stories of.
STEPS = [
    PAYMENTS,
    STOCK,
    PGP,
    PGP.removesuffix(".pgp"),
    GZ_PGP,
    GZ_PGP.removesuffix(".pgp"),
    ZIP_PGP,
    ZIP,
    *MEMBERS,
]


def ingest_here(stack: RunningStack, *args: str) -> str:
    """``ingest ARGS --state-dir <stack>``'s output, run by the CLI's own ``main`` in this
    process (the console script's parser, commands and output), in the environment ``ingest``
    subprocesses get: a new interpreter for each of a dozen stories costs seconds apiece."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out):
        for name in [n for n in os.environ if n not in cli_env()]:
            env.delenv(name)
        for name, value in cli_env().items():
            env.setenv(name, value)
        code = cli_main([*args, "--state-dir", str(stack.state_dir)])
    assert code == 0, (args, out.getvalue())
    return out.getvalue()


def status_json(stack: RunningStack, *args: str) -> Any:
    """``ingest status ARGS --json``."""
    return json.loads(ingest_here(stack, "status", *args, "--json"))


@pytest.fixture(scope="module")
def stories(delivered: RunningStack) -> dict[str, dict[str, Any]]:
    """``ingest status KEY --json`` of every step, once all of them are terminal."""
    ledger = Ledger(delivered.client("dynamodb"), delivered.resources["ledger_table"])
    wait_for(
        lambda: all((e := ledger.get_file(k)) is not None and e.status in TERMINAL for k in STEPS),
        timeout=120,
        what="every delivery's steps to be terminal",
    )
    return {key: status_json(delivered, key) for key in STEPS}


def chain(entry: dict[str, Any]) -> list[tuple[str, str]]:
    return [(link["envelope"], link["step"]) for link in entry["envelopes"]]


def test_fixed_width_payments_land_with_their_trailer_count_checked(delivered, stories):
    entry = stories[PAYMENTS]
    assert (entry["status"], entry["feed"], entry["rows_ok"], entry["rows_rejected"]) == (
        "PROCESSED_WITH_REJECTS",
        "payments",
        PAYMENT_ROWS - 1,
        1,
    )
    # header and trailer are not records; the S subtotals are another record type, counted
    assert (entry["declared_records"], entry["records_skipped"]) == (
        PAYMENT_ROWS,
        len(range(0, PAYMENT_ROWS, 7)),
    )
    assert [r["line"] for r in entry["first_rejects"]] == [6]  # P00003, after H, D0, S0, D1, D2
    items = {i["payment_id"]["S"]: i for i in records_of(delivered, PAYMENTS)}
    assert len(items) == PAYMENT_ROWS - 1
    assert Decimal(items["P00001"]["amount"]["N"]) == Decimal("1.01")  # implied decimals
    assert Decimal(items["P00005"]["amount"]["N"]) == Decimal("-5.05")  # signed, every fifth
    assert items["P00005"]["booked_on"]["S"] == "2024-01-31"
    assert entry["envelopes"] == []  # sent as it is


def test_an_xlsx_workbooks_second_sheet_lands_with_typed_cells(delivered, stories):
    entry = stories[STOCK]
    assert (entry["status"], entry["feed"], entry["rows_ok"], entry["rows_rejected"]) == (
        "PROCESSED_WITH_REJECTS",
        "stock",
        STOCK_ROWS - 1,
        1,
    )
    assert entry["first_rejects"] == [{"line": 10, "reason": "field 'price': not a decimal: 'n/a'"}]
    items = {i["sku"]["S"]: i for i in records_of(delivered, STOCK)}
    assert len(items) == STOCK_ROWS - 1
    assert items["S0003"]["price"]["N"] == "0.3"  # 3 * 0.1 is 0.30000000000000004 as a float
    assert items["S0003"]["counted_on"]["S"] == "2024-01-04"
    assert items["S0003"]["counted_at"]["S"] == "2024-01-04T09:00:03"
    assert items["S0101"]["_line"]["N"] == str(3 + 101 + 1)  # spreadsheet rows, an empty one


def test_a_pgp_file_is_decrypted_next_to_itself_and_its_records_land(delivered, stories):
    entry = stories[PGP]
    plain = PGP.removesuffix(".pgp")
    assert (entry["status"], entry["output_count"], entry["outputs"]) == ("DECRYPTED", 1, [plain])
    assert entry["chunks"] == 0 and entry["reason"] is None
    records = stories[plain]
    assert (records["status"], records["rows_ok"], records["rows_rejected"]) == ("PROCESSED", 25, 0)
    assert chain(records) == [(PGP, "DECRYPTED")]
    assert len(records_of(delivered, plain)) == 25


def test_an_encrypted_gzip_decrypts_then_gunzips_while_parsed(delivered, stories):
    entry = stories[GZ_PGP]
    gz = GZ_PGP.removesuffix(".pgp")
    assert (entry["status"], entry["outputs"]) == ("DECRYPTED", [gz])
    records = stories[gz]
    assert (records["status"], records["feed"], records["rows_ok"]) == ("PROCESSED", "orders", 15)
    assert chain(records) == [(GZ_PGP, "DECRYPTED")]
    assert len(records_of(delivered, gz)) == 15


def test_an_encrypted_zip_decrypts_then_expands_and_its_gzip_member_is_parsed(delivered, stories):
    encrypted = stories[ZIP_PGP]
    assert (encrypted["status"], encrypted["output_count"], encrypted["outputs"]) == (
        "DECRYPTED",
        1,
        [ZIP],
    )
    archive = stories[ZIP]
    assert (archive["status"], archive["output_count"], archive["outputs"]) == (
        "EXPANDED",
        2,
        MEMBERS,
    )
    assert chain(archive) == [(ZIP_PGP, "DECRYPTED")]
    a, b = (stories[m] for m in MEMBERS)
    assert (a["status"], a["rows_ok"], a["rows_rejected"]) == ("PROCESSED", 10, 0)
    assert (b["status"], b["rows_ok"], b["rows_rejected"]) == ("PROCESSED_WITH_REJECTS", 12, 1)
    # each member's story goes back to what the partner sent, one ledger entry per step
    for member in (a, b):
        assert chain(member) == [(ZIP_PGP, "DECRYPTED"), (ZIP, "EXPANDED")]
    assert [len(records_of(delivered, m)) for m in MEMBERS] == [10, 12]
    # and `ingest status` (the list) shows the three steps' entries with their statuses
    listed = {f["key"]: f["status"] for f in status_json(delivered, "--prefix", ROOT)}
    assert [listed[k] for k in (ZIP_PGP, ZIP, *MEMBERS)] == [
        "DECRYPTED",
        "EXPANDED",
        "PROCESSED",
        "PROCESSED_WITH_REJECTS",
    ]
