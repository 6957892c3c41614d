"""template.yaml as the tests read it: the SAM transform, conditions resolved, and helpers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ingest_local.deploy import prepare_sam_template, sam_transform

ROOT = Path(__file__).resolve().parents[1]


TEMPLATE = ROOT / "template.yaml"


#: actions on data; a policy granting them must name its resources
DATA_SERVICES = ("s3", "dynamodb", "sqs", "secretsmanager", "kms", "transfer", "lambda")


#: resources that exist only to attach something to another resource
NO_OUTPUT_TYPES = {
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig",
}


def transform(raw: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The SAM transform, as CloudFormation runs it for a stack with ``parameters``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        # the transform wants an S3 CodeUri, as `sam deploy` gives it after packaging
        prepared = prepare_sam_template(raw, "s3://packaged-code/code.zip")
        return sam_transform(prepared, "us-east-1", parameters)


def resolve_conditions(tpl: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """``tpl`` as CloudFormation would create it with ``parameters``: conditions evaluated,
    ``Fn::If`` chosen, ``AWS::NoValue`` removed, resources and outputs of false conditions gone.
    Everything else (Ref, Sub, GetAtt) stays as written."""
    values: dict[str, Any] = {
        name: p.get("Default") for name, p in tpl.get("Parameters", {}).items()
    }
    values.update(parameters)
    for name, p in tpl.get("Parameters", {}).items():
        if p.get("Type") == "CommaDelimitedList" and isinstance(values[name], str):
            values[name] = values[name].split(",") if values[name] else [""]

    def value(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return values[node["Ref"]]
        if isinstance(node, dict) and set(node) == {"Fn::Join"}:
            sep, parts = node["Fn::Join"]
            return sep.join(str(x) for x in value(parts))
        return node

    conditions: dict[str, bool] = {}

    def condition(node: Any) -> bool:
        if isinstance(node, str):
            if node not in conditions:
                conditions[node] = condition(tpl["Conditions"][node])
            return conditions[node]
        ((fn, args),) = node.items()
        if fn == "Fn::Equals":
            return str(value(args[0])) == str(value(args[1]))
        if fn == "Fn::Not":
            return not condition(args[0])
        if fn == "Fn::And":
            return all(condition(a) for a in args)
        if fn == "Fn::Or":
            return any(condition(a) for a in args)
        if fn == "Condition":
            return condition(args)
        raise AssertionError(f"condition function {fn} not handled")

    no_value = object()

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [w for w in (walk(v) for v in node) if w is not no_value]
        if not isinstance(node, dict):
            return node
        if node == {"Ref": "AWS::NoValue"}:
            return no_value
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return walk(yes if condition(name) else no)
        out = {k: walk(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not no_value}

    resolved = json.loads(json.dumps(tpl))
    for section in ("Resources", "Outputs"):
        resolved[section] = {
            k: walk(v)
            for k, v in resolved.get(section, {}).items()
            if "Condition" not in v or condition(v["Condition"])
        }
    return resolved


#: a customer-managed key, and parameters that create every optional resource
KEY = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


EVERYTHING = {
    "PartnerSftpUrl": "sftp://sftp.partner.example",
    "PartnerSftpUser": "ingest",
    "PartnerTrustedHostKeys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsa",
    "AlarmEmail": "oncall@example.com",
}


def _param_default(raw: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return raw["Parameters"][value["Ref"]]["Default"]
    return value


def _resources(tpl: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == rtype}


def _statements(tpl: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, role in _resources(tpl, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                out.append((name, statement))
    for name, policy in _resources(tpl, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            out.append((name, statement))
    return out


def _referenced(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found.update(n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text))
                found |= _referenced(value)
            else:
                found |= _referenced(value)
    elif isinstance(node, list):
        for value in node:
            found |= _referenced(value)
    return found


#: every function, by logical id, and its POWERTOOLS_SERVICE_NAME (the metrics' `service`)
SERVICES = {
    "FanoutFunction": "fanout",
    "ProcessorFunction": "processor",
    "RetrieveFunction": "retrieve",
    "TransferStatusFunction": "transfer-status",
    "ExpectedFilesFunction": "expected-files",
    "UploadEventsFunction": "upload-events",
    "WaitSweepFunction": "wait-sweep",
    "OutcomesFunction": "outcomes",
}


def _alias_of(tpl: dict[str, Any], function: str) -> tuple[str, dict[str, Any]]:
    aliases = [
        (lid, a)
        for lid, a in _resources(tpl, "AWS::Lambda::Alias").items()
        if a["Properties"]["FunctionName"] == {"Ref": function}
    ]
    assert len(aliases) == 1, (function, aliases)
    return aliases[0]


def _error_alarm_of(tpl: dict[str, Any], function: str) -> str:
    """The alarm on the function's own AWS/Lambda Errors."""
    found = []
    for lid, alarm in _resources(tpl, "AWS::CloudWatch::Alarm").items():
        for m in alarm["Properties"].get("Metrics", []):
            metric = m.get("MetricStat", {}).get("Metric", {})
            if (metric.get("Namespace"), metric.get("MetricName")) == ("AWS/Lambda", "Errors"):
                dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
                if dims == {"FunctionName": {"Ref": function}}:
                    found.append(lid)
    assert len(found) == 1, (function, found)
    return found[0]


#: the EMF metrics of each service (namespace sftp-ingest, dimension `service`)
METRICS = {
    "fanout": {
        "FilesReceived",
        "FilesQueued",
        "FilesUnmatched",
        "FilesHeld",
        "FilesDuplicate",
        "FilesFailed",
        "ChunksQueued",
    },
    "processor": {
        "RowsWritten",
        "RowsRejected",
        "ChunksSucceeded",
        "ChunksFailed",
        "ChunkDuration",
        "FilesProcessed",
        "FilesFailed",
    },
    "upload-events": {"GatewayUploadsCompleted", "GatewayUploadsPartial"},
    "retrieve": {"TransfersStarted", "RetrievalsFailed"},
    "transfer-status": {"TransfersCompleted", "TransfersFailed"},
    "expected-files": {"FilesMissing", "FilesLate"},
    "outcomes": {"ReceiptsWritten", "EventsPublished", "OutcomesFailed"},
}


def _alarms(tpl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in _resources(tpl, "AWS::CloudWatch::Alarm").items()}


def _metric_stats(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of an alarm's metrics, math or not."""
    if "MetricName" in alarm:
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        return [(alarm["Namespace"], alarm["MetricName"], dims)]
    out = []
    for m in alarm["Metrics"]:
        if "MetricStat" in m:
            metric = m["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            out.append((metric["Namespace"], metric["MetricName"], dims))
    return out


def _dashboard_metrics(tpl: dict[str, Any]) -> list[list[Any]]:
    (dashboard,) = _resources(tpl, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"])
    metrics = []
    for widget in body["widgets"]:
        assert widget["type"] == "metric"
        assert widget["properties"]["region"] == "${AWS::Region}"
        metrics += widget["properties"]["metrics"]
    return metrics


def _kms_statements(tpl: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for owner, statement in _statements(tpl):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if any(str(a).lower().startswith("kms:") for a in actions):
            found.append((owner, statement))
    return found
