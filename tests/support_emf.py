"""What a handler printed as CloudWatch EMF, the functions' metric settings in template.yaml,
and the metrics table of docs/operations.md ("Metrics and logs"): so that a test can hold a
handler's metrics to the other two."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest_local.deploy import load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"

#: the table's dimension sets, as their column writes them
SERVICE = ("service",)
BY_CONNECTOR = ("service", "ConnectorId")

#: (metric, unit, dimension names): what a function emits, as the doc's table says it
Row = tuple[str, str, tuple[str, ...]]


@dataclass(frozen=True)
class Point:
    """One metric of one EMF blob."""

    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    values: tuple[float, ...]

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.dimensions)


def emf_points(stdout: str) -> list[Point]:
    """Every metric of every EMF blob in a captured stdout (other lines are skipped)."""
    points = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        blob = json.loads(line)
        if "_aws" not in blob:
            continue
        assert isinstance(blob["_aws"]["Timestamp"], int), blob
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            # Powertools writes one dimension set per blob; each metric is a top-level key
            (dimension_set,) = directive["Dimensions"]
            dimensions = tuple((name, blob[name]) for name in dimension_set)
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                values = tuple(value) if isinstance(value, list) else (value,)
                points.append(
                    Point(
                        directive["Namespace"], metric["Name"], metric["Unit"], dimensions, values
                    )
                )
    return points


def totals(points: Iterable[Point], **dimensions: str) -> dict[str, float]:
    """The Sum of each metric whose dimensions are exactly these."""
    want = dict(dimensions)
    out: dict[str, float] = {}
    for point in points:
        if dict(point.dimensions) == want:
            out[point.name] = out.get(point.name, 0) + sum(point.values)
    return out


def rows_of(points: Iterable[Point]) -> set[Row]:
    """What was emitted, as the doc's rows: (metric, unit, sorted dimension names)."""
    return {(p.name, p.unit, _canonical(p.dimension_names)) for p in points}


def _canonical(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(names, key=lambda n: (n != "service", n)))


def template_functions() -> dict[str, dict[str, str]]:
    """Each function's Powertools settings: ``{"service", "namespace", "handler"}``."""
    tpl = load_template(TEMPLATE)
    function_globals = tpl.get("Globals", {}).get("Function", {})
    global_env = function_globals.get("Environment", {}).get("Variables", {})
    out = {}
    for logical_id, resource in tpl["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        out[logical_id] = {
            "service": env["POWERTOOLS_SERVICE_NAME"],
            "namespace": env["POWERTOOLS_METRICS_NAMESPACE"],
            "handler": props["Handler"],
        }
    return out


def function_settings(handler: str) -> dict[str, str]:
    """The template's settings of the function whose Handler is ``lambdas.<module>.handler``."""
    (found,) = [f for f in template_functions().values() if f["handler"] == handler]
    return found


def doc_rows() -> dict[str, set[Row]]:
    """The metrics table of docs/operations.md, by function (its ``service``)."""
    text = OPERATIONS.read_text()
    section = text.split("## Metrics and logs", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[Row]] = {}
    header_seen = False
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            continue
        if cells[:4] == ["metric", "function", "unit", "dimensions"]:
            header_seen = True
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        assert header_seen, f"a table row before the metrics table's header: {line}"
        name = cells[0].strip("`")
        function, unit = cells[1], cells[2]
        for dimension_set in cells[3].split(";"):
            names = _canonical(re.findall(r"`([^`]+)`", dimension_set))
            assert names, f"no dimensions in {line}"
            rows.setdefault(function, set()).add((name, unit, names))
    assert rows, "no metrics table in docs/operations.md, 'Metrics and logs'"
    return rows


def use_function_settings(monkeypatch: pytest.MonkeyPatch, module: Any, handler: str) -> str:
    """Give the handler module's Metrics the template's namespace and service.

    In Lambda each function's process reads them from its own environment when the module
    is imported; here all the handlers share one interpreter, imported under whatever
    environment came first (``test_handler_metrics_settings`` checks the import itself).
    Returns the service.
    """
    settings = function_settings(handler)
    # its log lines too go to this test's stdout (the handler kept the stdout of its import)
    monkeypatch.setattr(module.logger.registered_handler, "stream", sys.stdout)
    monkeypatch.setattr(module.metrics, "namespace", settings["namespace"])
    monkeypatch.setattr(module.metrics, "service", settings["service"])
    module.metrics.clear_metrics()
    return settings["service"]


def assert_emitted_as_documented(points: list[Point], service: str) -> None:
    """Every metric in the function's namespace, with ``service``, and exactly its doc rows."""
    assert points, "no EMF output"
    namespaces = {p.namespace for p in points}
    assert namespaces == {"sftp-ingest"}, namespaces
    assert {dict(p.dimensions).get("service") for p in points} == {service}
    documented = doc_rows().get(service, set())
    assert rows_of(points) == documented, (
        f"emitted but not in docs/operations.md: {sorted(rows_of(points) - documented)}; "
        f"documented but not emitted: {sorted(documented - rows_of(points))}"
    )


def assert_json_logs_with_context(stdout: str, function_name: str) -> None:
    """The invocation logged JSON through Powertools, with its Lambda context injected."""
    logs = [
        json.loads(line)
        for line in stdout.splitlines()
        if line.startswith("{") and '"_aws"' not in line
    ]
    logs = [line for line in logs if "message" in line and "level" in line]
    assert logs, "no JSON log line"
    for line in logs:
        assert line.get("function_name") == function_name, line
        assert "function_request_id" in line and "cold_start" in line, line
