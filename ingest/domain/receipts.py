"""Where a file's receipt is kept, and what it says.

A receipt answers a partner's "what happened to my file?" once the file reaches a final
status. It lives in the landing bucket outside ``inbound/`` (so it never triggers ingestion),
under the partner's own prefix, which the partner's SFTP home maps read-only at ``/receipts``:

* ``receipts/<partner>/<path under inbound/<partner>/>.<fmt>``: the newest version's receipt;
* ``receipts/<partner>/.history/<path under inbound/<partner>/>.<etag>.<fmt>``: the receipt
  of every version (ETag) of that key, the newest included, kept when a newer one replaces it.

``fmt`` is the feed's ``receipt.format``: ``json`` (default) or ``csv``.
"""

from __future__ import annotations

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
