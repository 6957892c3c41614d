"""The ledger's record of checksum sidecars, done markers and the files waiting for them.

Items (in the ledger table, beside the files' entries):

* ``pk = FILE#<subject>``, ``sk = SIDECAR#<kind>``: the note a sidecar leaves beside the file it
  is about (``sidecar_key``, ``etag``, ``declared`` digest, ``problem``), so that a sidecar that
  lands before its file is remembered. ``<subject>`` is the file's key (``.sha256``, ``.md5``,
  ``<key>.done``) or a done marker's name without ``.done`` (``orders.done`` → ``orders``).
* ``pk = FILE#~waiting``, ``sk = FILE#<key>``: a file waiting for its sidecar or marker
  (``version``, ``ingestion``, ``feed``, ``wait_for``, ``since``, ``deadline``), read by the
  sweep; deleted when the file is released or fails.
* the sidecar's own entry (``pk = FILE#<sidecar key>``, ``sk = FILE``): ``IGNORED`` with the
  reason (what it did) and ``sidecar_for``.

The release of a waiting file is one conditional update of its entry (:meth:`claim_release`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from ingest.adapters.dynamo import attr, from_item
from ingest.adapters.ledger import Ledger
from ingest.adapters.ledger_items import file_pk, ledger_item, new_file_item
from ingest.domain.feed_types import WaitFor
from ingest.domain.files import FileStatus
from ingest.domain.sidecars import AWAITING, RELEASING, SidecarKind, SidecarNote, WaitingFile

SIDECAR_PREFIX = "SIDECAR#"
#: the waiting index's partition, ``FILE#~waiting``: no landed key is ``~waiting`` (fanout
#: registers only keys under ``inbound/``), and its items' sort keys are not ``FILE``, so
#: ``ingest status`` never lists them as files
WAITING_SUBJECT = "~waiting"
WAITING_PREFIX = "FILE#"


class SidecarNotes:
    """Sidecar notes, the waiting index and releases, over the ledger adapter."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def _clock(self) -> float:
        return float(self._ledger.clock())

    # --- sidecar notes -------------------------------------------------------------------

    def note_sidecar(self, note: SidecarNote) -> None:
        item = {
            "pk": file_pk(note.subject),
            "sk": f"{SIDECAR_PREFIX}{note.kind.value}",
            "subject": note.subject,
            "kind": note.kind.value,
            "sidecar_key": note.sidecar_key,
            "etag": note.etag,
            "declared": note.declared,
            "problem": note.problem,
            "at": self._clock(),
        }
        self._ledger.write("PutItem", Item=ledger_item(item))

    def sidecar_notes(self, subjects: Sequence[str]) -> list[SidecarNote]:
        notes = []
        for subject in subjects:
            for item in self._ledger.query_items(subject, SIDECAR_PREFIX):
                values = from_item(item)
                notes.append(
                    SidecarNote(
                        subject=values["subject"],
                        kind=SidecarKind(values["kind"]),
                        sidecar_key=values["sidecar_key"],
                        etag=values["etag"],
                        declared=values.get("declared"),
                        problem=values.get("problem"),
                    )
                )
        return notes

    def record_sidecar(
        self, key: str, *, reason: str, sidecar_for: str, size: int | None, etag: str | None
    ) -> None:
        item = new_file_item(
            key,
            FileStatus.IGNORED,
            now=self._clock(),
            reason=reason[:1000],
            sidecar_for=sidecar_for,
            size=size,
            etag=etag,
            version=etag,
        )
        self._ledger.write("PutItem", Item=item)

    # --- the waiting index ---------------------------------------------------------------

    def await_file(self, waiting: WaitingFile) -> None:
        item = {
            "pk": file_pk(WAITING_SUBJECT),
            "sk": f"{WAITING_PREFIX}{waiting.key}",
            "key": waiting.key,
            "version": waiting.version,
            "ingestion": waiting.ingestion,
            "feed": waiting.feed,
            "wait_for": waiting.wait_for.value,
            "since": waiting.since,
            "deadline": waiting.deadline,
        }
        self._ledger.write("PutItem", Item=ledger_item(item))

    def waiting_files(self) -> list[WaitingFile]:
        found = []
        for item in self._ledger.query_items(WAITING_SUBJECT, WAITING_PREFIX):
            v = from_item(item)
            found.append(
                WaitingFile(
                    key=v["key"],
                    version=v["version"],
                    ingestion=v["ingestion"],
                    feed=v["feed"],
                    wait_for=WaitFor(v["wait_for"]),
                    since=float(v["since"]),
                    deadline=float(v["deadline"]),
                )
            )
        return found

    def forget_waiting(self, key: str) -> None:
        table = self._ledger.table
        where = {"pk": attr(file_pk(WAITING_SUBJECT)), "sk": attr(f"{WAITING_PREFIX}{key}")}
        self._ledger.write(
            "TransactWriteItems", TransactItems=[{"Delete": {"TableName": table, "Key": where}}]
        )

    # --- the file's entry ----------------------------------------------------------------

    def claim_release(
        self, key: str, version: str, ingestion: str, *, confirmed_by: str, stale_before: float
    ) -> str | None:
        """The waiting entry, still this version and ingestion, becomes "releasing" under a new
        ingestion (returned); None when another invocation claimed it first, or it no longer
        waits. A "releasing" entry last changed before ``stale_before`` may be taken over."""
        new = secrets.token_hex(8)
        waiting = {f":w{i}": attr(reason) for i, reason in enumerate(AWAITING.values())}
        claimed = self._ledger.update_file(
            key,
            "SET ingestion = :new, reason = :releasing, confirmed_by = :by, updated_at = :now",
            condition=(
                "#s = :received AND version = :v AND ingestion = :i AND "
                f"(reason IN ({', '.join(waiting)}) OR "
                "(reason = :releasing AND updated_at < :stale))"
            ),
            values={
                ":new": attr(new),
                ":releasing": attr(RELEASING),
                ":by": attr(confirmed_by),
                ":now": attr(self._clock()),
                ":received": attr(FileStatus.RECEIVED.value),
                ":v": attr(version),
                ":i": attr(ingestion),
                ":stale": attr(stale_before),
                **waiting,
            },
        )
        return new if claimed else None

    def note_confirmation(
        self, key: str, version: str, *, confirmed_by: str, digest: str | None
    ) -> None:
        values: dict[str, Any] = {
            ":by": attr(confirmed_by),
            ":v": attr(version),
            ":nothing": attr(""),
        }
        expression = "SET confirmed_by = :by"
        if digest is not None:
            expression += ", digest = :digest"
            values[":digest"] = attr(digest)
        # (update_file names #s for the status; this update does not change it)
        self._ledger.update_file(
            key, expression, condition="version = :v AND #s <> :nothing", values=values
        )

    def fail_file(
        self,
        key: str,
        version: str,
        reason: str,
        *,
        ingestion: str | None = None,
        confirmed_by: str | None = None,
        digest: str | None = None,
    ) -> bool:
        """FAILED with ``reason``, if the entry is still this version (and ingestion).

        Without an ``ingestion`` (a sidecar verified after its file was queued or processed)
        the entry also gets a new ingestion id: chunks of the file still in flight are then
        stale, and stop instead of finishing the file as PROCESSED over the failure."""
        values: dict[str, Any] = {
            ":failed": attr(FileStatus.FAILED.value),
            ":reason": attr(reason[:1000]),
            ":now": attr(self._clock()),
            ":v": attr(version),
        }
        expression = "SET #s = :failed, reason = :reason, updated_at = :now"
        for name, value in (("confirmed_by", confirmed_by), ("digest", digest)):
            if value is not None:
                expression += f", {name} = :{name}"
                values[f":{name}"] = attr(value)
        condition = "version = :v"
        if ingestion is not None:
            condition += " AND ingestion = :i"
            values[":i"] = attr(ingestion)
        else:
            expression += ", ingestion = :fenced"
            values[":fenced"] = attr(secrets.token_hex(8))
        return self._ledger.update_file(key, expression, condition=condition, values=values)


__all__ = ["SIDECAR_PREFIX", "WAITING_SUBJECT", "SidecarNotes"]
