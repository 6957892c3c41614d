"""Where a file's receipt is kept, and what it says.

A receipt answers a partner's "what happened to my file?" once the file reaches a final
status. It lives in the landing bucket outside ``inbound/`` (so it never triggers ingestion),
under the partner's own prefix, which the partner's SFTP home maps read-only at ``/receipts``:

* ``receipts/<partner>/<path under inbound/<partner>/>.<fmt>``: the newest version's receipt;
* ``receipts/<partner>/.history/<path under inbound/<partner>/>.<etag>.<fmt>``: the receipt
  of every version (ETag) of that key, the newest included, kept when a newer one replaces it.

``fmt`` is the feed's ``receipt.format``: ``json`` (default) or ``csv``. What a receipt says
is :func:`receipt_document` (docs/contracts.md, "Receipts").
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ingest.domain.files import FileEntry

RECEIPTS_PREFIX = "receipts/"
#: the folder, under a partner's receipts, of every version's receipt
HISTORY_DIR = ".history"
FORMATS = ("json", "csv")
_INBOUND = "inbound/"


def _split(file_key: str) -> tuple[str, str] | None:
    """``(partner, path under inbound/<partner>/)`` of a key, or None outside any partner's home."""
    if not file_key.startswith(_INBOUND):
        return None
    partner, sep, path = file_key[len(_INBOUND) :].partition("/")
    if not partner or not sep or not path or path.endswith("/"):
        return None
    return partner, path


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"receipt format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def partner_receipts_prefix(partner: str) -> str:
    """Where one partner's receipts live: ``receipts/<partner>/`` (its SFTP ``/receipts``)."""
    return f"{RECEIPTS_PREFIX}{partner}/"


def receipt_key(file_key: str, fmt: str = "json") -> str | None:
    """The key of the newest receipt of ``file_key``; None for keys outside ``inbound/<partner>/``.

    ``inbound/acme/orders/a.csv`` -> ``receipts/acme/orders/a.csv.json``.
    """
    _check(fmt)
    split = _split(file_key)
    if split is None:
        return None
    partner, path = split
    return f"{partner_receipts_prefix(partner)}{path}.{fmt}"


def history_key(file_key: str, etag: str, fmt: str = "json") -> str | None:
    """The key of one version's receipt, kept after newer versions replace it.

    ``inbound/acme/orders/a.csv``, ETag ``abc`` -> ``receipts/acme/.history/orders/a.csv.abc.json``.
    """
    _check(fmt)
    split = _split(file_key)
    if split is None:
        return None
    partner, path = split
    tag = etag.strip('"') or "unknown"
    return f"{partner_receipts_prefix(partner)}{HISTORY_DIR}/{path}.{tag}.{fmt}"


#: how many rejected rows a receipt lists (``rejects_truncated`` says when there were more)
MAX_REJECTS = 100
CONTENT_TYPES = {"json": "application/json", "csv": "text/csv"}
#: the columns of a CSV receipt: the file's outcome on every row, one row per rejected row
#: (one row with empty reject columns when there are none)
CSV_COLUMNS = (
    "file",
    "status",
    "received_at",
    "finished_at",
    "rows_ok",
    "rows_rejected",
    "reason",
    "rejects_truncated",
    "line",
    "reject_reason",
)


def partner_path(file_key: str) -> str | None:
    """Where the partner sees ``file_key`` in its SFTP home: ``/orders/a.csv``."""
    split = _split(file_key)
    return f"/{split[1]}" if split else None


def receipt_document(
    entry: FileEntry,
    *,
    received_at: str | None,
    finished_at: str | None,
    rejects: Sequence[Mapping[str, Any]],
    truncated: bool,
    include_raw: bool,
) -> dict[str, Any]:
    """What a receipt says (docs/contracts.md, "Receipts"); the same entry and rejects always
    give the same document, so a receipt written again is the same receipt."""
    rows = [
        {"line": r.get("line"), "reason": r.get("reason")}
        | ({"raw": r.get("raw")} if include_raw else {})
        for r in rejects[:MAX_REJECTS]
    ]
    document: dict[str, Any] = {
        "file": partner_path(entry.key) or entry.key,
        "key": entry.key,
        "partner": entry.partner,
        "feed": entry.feed,
        "status": entry.status,
        "etag": entry.etag or entry.version,
        "size": entry.size,
        "received_at": received_at,
        "finished_at": finished_at,
        "rows_ok": entry.rows_ok,
        "rows_rejected": entry.rows_rejected,
    }
    if entry.reason:
        document["reason"] = entry.reason
    if entry.output_count is not None:
        document["output_count"] = entry.output_count
    document["rejects"] = rows
    document["rejects_truncated"] = truncated or len(rejects) > MAX_REJECTS
    return document


def render_receipt(document: Mapping[str, Any], fmt: str, *, include_raw: bool = False) -> bytes:
    """A receipt document as the bytes of its object, in ``fmt`` (``json`` or ``csv``)."""
    _check(fmt)
    if fmt == "json":
        return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
    out = io.StringIO()
    columns = CSV_COLUMNS + (("raw",) if include_raw else ())
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    summary = [
        document["file"],
        document["status"],
        document.get("received_at") or "",
        document.get("finished_at") or "",
        document["rows_ok"],
        document["rows_rejected"],
        document.get("reason") or "",
        str(document["rejects_truncated"]).lower(),
    ]
    rejects = document["rejects"] or [{}]
    for row in rejects:
        reject = [row.get("line", ""), row.get("reason", "")]
        writer.writerow(summary + reject + ([row.get("raw", "")] if include_raw else []))
    return out.getvalue().encode()
