"""Every custom metric that template.yaml's alarms and dashboard read is one the functions emit,
with the dimensions they emit it with, as docs/operations.md's metrics table lists them (the
functional tests hold the handlers' EMF output to that table)."""

from __future__ import annotations

import json
import re
from typing import Any

from support_emf import TEMPLATE, doc_rows, template_functions

from ingest_local.deploy import load_template

NAMESPACE = "sftp-ingest"


def _documented() -> set[tuple[str, str, tuple[str, ...]]]:
    """(function, metric, dimension names) of every documented metric."""
    return {
        (function, name, dims) for function, rows in doc_rows().items() for name, _, dims in rows
    }


def _alarm_metrics(tpl: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(alarm, metric, dimensions) of every alarm metric in our namespace."""
    found = []
    for logical_id, resource in tpl["Resources"].items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if "MetricName" in props:
            stats.append(props)
        for metric in stats:
            if metric.get("Namespace") == NAMESPACE:
                dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                found.append((logical_id, metric["MetricName"], dims))
    return found


def _dashboard_metrics(tpl: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(metric, dimensions) of every dashboard metric line in our namespace."""
    found = []
    for resource in tpl["Resources"].values():
        if resource.get("Type") != "AWS::CloudWatch::Dashboard":
            continue
        body = resource["Properties"]["DashboardBody"]
        text = body["Fn::Sub"] if isinstance(body, dict) else body
        text = text if isinstance(text, str) else text[0]
        # ${…} substitutions are JSON-safe inside strings; the body must parse as JSON
        widgets = json.loads(re.sub(r"\$\{[^}]+\}", "X", text))["widgets"]
        for widget in widgets:
            for line in widget.get("properties", {}).get("metrics", []):
                if line and line[0] == NAMESPACE:
                    cells = [c for c in line if not isinstance(c, dict)]
                    name, pairs = cells[1], cells[2:]
                    found.append((name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


def _check(where: str, name: str, dims: dict[str, Any], documented: set[Any]) -> None:
    services = {f["service"] for f in template_functions().values()}
    service = dims.get("service")
    assert service in services, f"{where}: {name} without a function's service: {dims}"
    names = tuple(sorted(dims, key=lambda n: (n != "service", n)))
    assert (service, name, names) in documented, (
        f"{where}: {name} {dims} is not a metric that {service} emits (docs/operations.md)"
    )


def test_alarms_and_dashboard_read_only_emitted_metrics() -> None:
    tpl = load_template(TEMPLATE)
    documented = _documented()
    alarms, dashboard = _alarm_metrics(tpl), _dashboard_metrics(tpl)
    assert alarms and dashboard, "no alarm or dashboard reads our metrics"
    for alarm, name, dims in alarms:
        _check(alarm, name, dims, documented)
    for name, dims in dashboard:
        _check("Dashboard", name, dims, documented)
