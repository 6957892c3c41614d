"""What every handler uses, whatever it calls: its logger, tracer and metrics, its cold start.

Every handler has one :class:`Wiring`: at its first invocation (the cold start) it reads the
function's settings from the environment and builds the ports the core calls, then keeps
them for the container's life. A test drives a handler through the same two things: the
environment (``reset()`` makes the next invocation a cold start again), and the ports
(``use()`` hands the handler ready-made ones, e.g. the real adapters wrapped to inject faults).

Nothing here imports the core: a handler that needs none of the ingestion wiring (the
transfer-status function) imports this module, not :mod:`lambdas.runtime`, and so never loads
the feeds, the ledger or the envelope steps (docs/benchmarks.md, issue 11).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from msgspec import Struct

S = TypeVar("S")
P = TypeVar("P")

#: The packages whose ``logging.getLogger(__name__)`` lines belong in a function's log.
CORE_LOGGERS = frozenset({"ingest", "connectors"})


def function_logger() -> Logger:
    """The function's Powertools logger, with the core's loggers routed through it.

    The core logs with the standard library (it never imports Powertools' Logger). Without
    this, Lambda's root handler would drop their INFO lines and their ``extra`` fields would
    never reach the JSON: now each core line is a JSON object in the function's log, at the
    function's level (``POWERTOOLS_LOG_LEVEL``), with its ``extra`` keys and its logger name.
    """
    logger = Logger()
    for name in CORE_LOGGERS:
        logging.getLogger(name)  # so that the copy below finds the package's logger
    copy_config_to_registered_loggers(source_logger=logger, include=set(CORE_LOGGERS))
    return logger


def function_tracer() -> Tracer:
    """The function's X-Ray tracer; its AWS SDK calls become subsegments.

    Only botocore is patched (every call to S3, SQS, DynamoDB, Transfer): patching all the
    libraries X-Ray knows would also trace each HTTP connection under those calls. Outside
    Lambda, or with ``POWERTOOLS_TRACE_DISABLED`` (the local stack sets it), it does nothing.
    """
    return Tracer(patch_modules=("botocore",))


def add_counts(metrics: Metrics, counts: Mapping[str, int]) -> None:
    """Add these ``Count`` metrics to the invocation's EMF blob (dimension ``service``)."""
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def add_connector_counts(metrics: Metrics, connector_id: str, counts: Mapping[str, int]) -> None:
    """The per-connector copies of ``counts``: dimensions ``service`` and ``ConnectorId``.

    EMF gives every metric of one blob the same dimensions, so each copy is a blob of its own
    (Powertools' ``single_metric``), in the function's namespace and service.
    """
    dimensions = {"service": str(metrics.service)} if metrics.service else {}
    dimensions["ConnectorId"] = connector_id
    for name, value in counts.items():
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=metrics.namespace,
            default_dimensions=dimensions,
        ):
            pass


class Wired(Struct, Generic[S, P], frozen=True):
    """What one function is built from at cold start: its settings and the ports it calls."""

    settings: S
    ports: P


class Wiring(Generic[S, P]):
    """A function's cold start: ``build(os.environ)`` once per container, then the same."""

    def __init__(self, build: Callable[[Mapping[str, str]], Wired[S, P]]) -> None:
        self._build = build
        self._wired: Wired[S, P] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Wired[S, P]:
        with self._lock:
            if self._wired is None:
                self._wired = self._build(os.environ)
            return self._wired

    def use(self, wired: Wired[S, P]) -> None:
        """Serve the next invocations with these settings and ports."""
        with self._lock:
            self._wired = wired

    def reset(self) -> None:
        """The next invocation is a cold start again (reads the environment anew)."""
        with self._lock:
            self._wired = None
