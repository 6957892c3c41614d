"""FanoutFunction: S3 ObjectCreated (direct, in SQS, or via EventBridge) → chunk messages."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext
from msgspec.structs import asdict

from ingest.domain.events import landed_objects
from ingest.usecases.fanout import Outcome, ingest_object
from lambdas.fanout_wiring import build_fanout
from lambdas.runtime import Wiring, add_counts, function_logger, function_tracer

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()
wiring = Wiring(build_fanout)
ingest = tracer.capture_method(capture_response=False)(ingest_object)

#: Each outcome's metric. Every object handled counts in FilesReceived; temporary and marker
#: names (IGNORED) count there only (docs/operations.md, "Metrics and logs").
OUTCOME_METRICS: dict[Outcome, str | None] = {
    Outcome.QUEUED: "FilesQueued",
    Outcome.UNMATCHED: "FilesUnmatched",
    Outcome.HELD: "FilesHeld",
    # files held in RECEIVED until their checksum sidecar or done marker lands (wait_for)
    Outcome.WAITING: "FilesWaiting",
    Outcome.DUPLICATE: "FilesDuplicate",
    Outcome.IGNORED: None,
    # envelopes opened next to themselves (their outputs come back as files of their own)
    # or refused (ledger FAILED with the reason: zip slip or bomb, a wrong key; nothing written)
    Outcome.EXPANDED: "FilesExpanded",
    Outcome.DECRYPTED: "FilesDecrypted",
    Outcome.FAILED: "FilesRefused",
}
METRICS = ("FilesReceived", *filter(None, OUTCOME_METRICS.values()), "FilesFailed", "ChunksQueued")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ports, counts, results = wiring().ports, Counter(dict.fromkeys(METRICS, 0)), []
    try:
        for obj in landed_objects(event):
            counts["FilesReceived"] += 1
            tracer.put_annotation(key="key", value=obj.key)
            try:
                result = ingest(obj, ports)
            except Exception:
                counts["FilesFailed"] += 1  # the event fails; Lambda retries it
                raise
            results.append(result)
            if (name := OUTCOME_METRICS[result.outcome]) is not None:
                counts[name] += 1
            counts["ChunksQueued"] += result.chunks
    finally:
        add_counts(metrics, counts)
    return {"files": [asdict(r) for r in results]}
