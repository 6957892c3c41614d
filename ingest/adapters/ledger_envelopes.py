"""The ledger's record of envelope steps: what an envelope wrote, and where each output came from.

Items (beside the file's entry, under the same ``pk = FILE#<key>``):

* on the envelope's entry (``sk = FILE``): ``status`` (its step's: EXPANDED, DECRYPTED),
  ``output_count`` and ``outputs``, the first :data:`~ingest.domain.envelopes.OUTPUT_KEYS_IN_ENTRY`
  output keys, in archive order. An item holds at most 400 KB, so a large archive's other keys
  are items of their own: ``sk = OUTPUT#<version>#<index>`` with ``output_key``.
* on each output (``pk = FILE#<output key>``): ``sk = ENVELOPE#<envelope key>``, with
  ``envelope`` (its key), ``envelope_version``, ``step`` and ``at``: the link that
  ``ingest status KEY`` follows back, link by link, to what the partner sent. It is written
  before the step's result is recorded, and it outlives the output's own entry being
  replaced (a newer upload of the same key is not from the envelope: compare ``at`` with the
  entry's ``received_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.adapters.dynamo import attr, from_item
from ingest.adapters.ledger_items import LedgerTable, file_pk, ledger_item
from ingest.domain.envelopes import OUTPUT_KEYS_IN_ENTRY, EnvelopeKind

OUTPUT_PREFIX = "OUTPUT#"
ENVELOPE_PREFIX = "ENVELOPE#"
#: TransactWriteItems takes at most 100 items.
_BATCH = 100
#: The most envelope steps ``ingest status KEY`` follows back from a file.
MAX_CHAIN = 16


def output_prefix(version: str) -> str:
    return f"{OUTPUT_PREFIX}{version}#"


class EnvelopeLedger:
    """Envelope steps in the ledger table (over the :class:`~ingest.adapters.ledger.Ledger`)."""

    def __init__(self, ledger: LedgerTable) -> None:
        self._ledger = ledger

    def record_outputs(
        self,
        key: str,
        version: str,
        ingestion: str | None,
        kind: EnvelopeKind,
        outputs: Sequence[str],
    ) -> bool:
        """The envelope's entry becomes ``kind``'s status with its outputs; False if a newer
        version or ingestion took the entry meanwhile. Idempotent."""
        now = self._ledger.clock()
        items = [
            ledger_item(
                {
                    "pk": file_pk(output),
                    "sk": f"{ENVELOPE_PREFIX}{key}",
                    "envelope": key,
                    "envelope_version": version,
                    "step": kind.value,
                    "at": now,
                }
            )
            for output in outputs
        ]
        items += [
            ledger_item(
                {"pk": file_pk(key), "sk": f"{output_prefix(version)}{i:06d}", "output_key": output}
            )
            for i, output in enumerate(outputs)
            if i >= OUTPUT_KEYS_IN_ENTRY
        ]
        table = self._ledger.table
        for start in range(0, len(items), _BATCH):
            puts = [{"Put": {"TableName": table, "Item": i}} for i in items[start : start + _BATCH]]
            self._ledger.write("TransactWriteItems", TransactItems=puts)
        same = "version = :v" + (" AND ingestion = :i" if ingestion else "")
        return self._ledger.update_file(
            key,
            "SET #s = :step, output_count = :n, outputs = :outs, updated_at = :now REMOVE reason",
            condition=same,
            values={
                ":step": attr(kind.value),
                ":n": attr(len(outputs)),
                ":outs": attr(list(outputs[:OUTPUT_KEYS_IN_ENTRY])),
                ":now": attr(now),
                ":v": attr(version),
                **({":i": attr(ingestion)} if ingestion else {}),
            },
        )

    def all_outputs(self, key: str, version: str, first: Sequence[str]) -> list[str]:
        """Every output of an envelope version: ``first`` (its entry's) and the overflow items."""
        rest = [
            from_item(i)["output_key"]
            for i in self._ledger.query_items(key, output_prefix(version))
        ]
        return [*first, *rest]

    def envelopes_of(self, key: str) -> list[dict[str, Any]]:
        """The chain of envelopes ``key`` was written from, back to what the partner sent,
        oldest first: ``{envelope, envelope_version, step, at}``.

        Each link's own envelopes come before it: a member of an encrypted archive lists the
        ``.zip.pgp`` (DECRYPTED), then the ``.zip`` (EXPANDED). At most :data:`MAX_CHAIN`
        links are followed (a chain is a handful; an output never names its envelope's key,
        so there are no loops, but a ledger edited by hand is not trusted to have none).
        """
        chain: list[dict[str, Any]] = []
        seen = {key}

        def follow(target: str) -> None:
            for link in sorted(self._links(target), key=lambda link: link["at"] or 0):
                envelope = link["envelope"]
                if envelope in seen or len(chain) >= MAX_CHAIN:
                    continue
                seen.add(envelope)
                follow(envelope)
                chain.append(link)

        follow(key)
        return chain

    def _links(self, key: str) -> list[dict[str, Any]]:
        """The envelopes that wrote ``key`` directly."""
        return [
            {name: link.get(name) for name in ("envelope", "envelope_version", "step", "at")}
            for link in (from_item(i) for i in self._ledger.query_items(key, ENVELOPE_PREFIX))
        ]
