"""What partners send (issue 12), made at test time for the functional and end-to-end tests:
zip archives (plain, and ZipCrypto-encrypted with Info-ZIP's ``zip -P``), PGP keys and
messages (pysequoia; gpg for a passphrase-protected key made by another implementation),
fixed-width payment files and xlsx stock workbooks. Nothing here is committed data: every
key and file is generated when a test asks for it.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import zipfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pysequoia
from openpyxl import Workbook

# --- zip -------------------------------------------------------------------------------------


def build_zip(members: Mapping[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An archive holding ``members`` (name → bytes; a name ending in ``/`` is a directory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


def encrypted_zip(tmp: Path, members: Mapping[str, bytes], password: str) -> bytes:
    """An archive whose members are ZipCrypto-encrypted with ``password``, made by Info-ZIP's
    ``zip -P`` (the standard library reads such archives but does not write them)."""
    if shutil.which("zip") is None:
        raise AssertionError("Info-ZIP zip is needed (.ci/run installs zip)")
    work = tmp / f"zip-{len(list(tmp.iterdir()))}"
    work.mkdir()
    for name, data in members.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    subprocess.run(
        ["zip", "-q", "-r", "-P", password, "archive.zip", *members],
        cwd=work,
        check=True,
    )
    data = (work / "archive.zip").read_bytes()
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert infos and all(info.flag_bits & 0x1 for info in infos)  # every member encrypted
    return data


# --- PGP -------------------------------------------------------------------------------------


def pgp_key(user_id: str, suite: Any = None) -> Any:
    """A new secret key (pysequoia ``Tsk``), made for this run; ``suite`` a ``CipherSuite``."""
    if suite is None:
        return pysequoia.Tsk.generate(user_id)
    return pysequoia.Tsk.generate(user_id, cipher_suite=suite)


def encrypt(data: bytes, tsk: Any, *, signer: Any = None, armor: bool = False) -> bytes:
    """``data`` encrypted to ``tsk``'s certificate (and signed by ``signer``)."""
    return pysequoia.encrypt(data, [tsk.extract_certificate()], signer=signer, armor=armor)


def gpg_key_with_passphrase(tmp: Path, passphrase: str) -> str:
    """A Curve25519 key made by gpg, exported armored and protected by ``passphrase``."""
    if shutil.which("gpg") is None:
        raise AssertionError("gpg is needed (.ci/run installs gnupg)")
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
    gpg += ["--passphrase", passphrase]
    uid = "hospital <pgp@hospital.example>"
    subprocess.run(
        [*gpg, "--quick-gen-key", uid, "future-default", "default", "never"],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [*gpg, "--armor", "--export-secret-keys", uid], check=True, capture_output=True
    )
    return out.stdout.decode()


# --- fixed width -----------------------------------------------------------------------------

#: A feed for :func:`payments_file` (indent it under ``feeds:``): header, trailer with a
#: record count, record type ``D``, implied decimals.
PAYMENTS_FEED = """
  - name: payments
    match: "inbound/{partner}/payments/*.txt"
    format: fixed_width
    fixed_width: {encoding: latin-1, header_lines: 1, trailer_lines: 1,
                   record_type: {start: 1, width: 1, value: "D"},
                   trailer: {count_start: 2, count_width: 9}}
    key: {pk: "PAYMENT#{payment_id}", sk: "PARTNER#{partner}"}
    fields:
      payment_id: {type: string, required: true, start: 2, width: 10}
      amount:     {type: decimal, required: true, start: 12, width: 12, scale: 2}
      booked_on:  {type: date, start: 24, width: 8, format: "%Y%m%d"}
"""


def payments_file(rows: int, declared: int, *, bad: Collection[int] = ()) -> bytes:
    """A bank's payments: a header, ``rows`` ``D`` records (amount ``i * 1.01``, every fifth
    negative; the rows in ``bad`` unreadable), an ``S`` subtotal after every seventh (another
    record type: skipped and counted), and a trailer declaring ``declared`` records."""
    lines = ["H20240131ACME BANK           "]
    for i in range(rows):
        sign = "-" if i % 5 == 0 else "+"
        amount = "00000000012A" if i in bad else f"{i * 101:011d}{sign}"
        lines.append(f"D{f'P{i:05d}':<10}{amount}20240131")
        if i % 7 == 0:
            lines.append(f"S subtotal after {i}")
    lines.append(f"T{declared:09d}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


# --- xlsx ------------------------------------------------------------------------------------

#: A feed for :func:`stock_workbook`: its second sheet, the header on row 2.
STOCK_FEED = """
  - name: stock
    match: "inbound/{partner}/stock/*.xlsx"
    format: xlsx
    xlsx: {sheet: Stock, header_row: 2}
    key: {pk: "SKU#{sku}", sk: "PARTNER#{partner}"}
    fields:
      sku: {type: string, required: true}
      price: {type: decimal, required: true}
      units: {type: int}
      counted_on: {type: date}
      counted_at: {type: timestamp}
"""


def stock_workbook(rows: int) -> bytes:
    """A retailer's stock count: a first sheet that is not it, then sheet ``Stock`` with a
    title row, a header, ``rows`` rows (price ``i * 0.1``, row 7's ``n/a``: a reject; dates
    and datetimes typed by Excel) and an empty row after row 100."""
    book = Workbook(write_only=True)
    book.create_sheet("Notes").append(["not this sheet"])
    sheet = book.create_sheet("Stock")
    sheet.append(["Stock count, January"])
    sheet.append(["sku", "price", "units", "counted_on", "counted_at"])
    for i in range(rows):
        price = "n/a" if i == 7 else round(i * 0.1, 2)
        day = dt.datetime(2024, 1, 1 + i % 28)
        sheet.append([f"S{i:04d}", price, i, day, day + dt.timedelta(hours=9, seconds=i)])
        if i == 100:
            sheet.append([])  # an empty row: not a record
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
