"""WaitSweepFunction: a schedule → files that waited past their feed's ``wait_timeout`` FAILED,
releases an invocation left half done taken over (ingest.usecases.sidecars.sweep_waiting)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from ingest.errors import SettingsError
from ingest.usecases.sidecars import sweep_waiting
from lambdas.fanout_wiring import build_fanout
from lambdas.runtime import Wiring, add_counts, function_logger, function_tracer

logger = function_logger()
metrics = Metrics()
tracer = function_tracer()
wiring = Wiring(build_fanout)
sweep = tracer.capture_method(capture_response=False)(sweep_waiting)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One scheduled event in (its content is not needed), the sweep's counts out."""
    wired = wiring()
    ports = wired.ports
    if ports.sidecars is None:
        raise SettingsError("the sidecar gate is not wired")
    report = sweep(
        time.time(),
        wired.settings.common.bucket,
        ports.queueing,
        ports.sidecars,
        ports.content_gate,
    )
    counts = {
        "FilesTimedOut": report.timed_out,
        "FilesReleased": report.released,
        "FilesStillWaiting": report.waiting,
    }
    add_counts(metrics, counts)
    logger.info("swept waiting files", extra={**counts, "forgotten": report.forgotten})
    return {**counts, "forgotten": report.forgotten}
