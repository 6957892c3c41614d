"""template.yaml: alarms with actions on the alarm topic, the alarms an on-call engineer
needs, the dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

from support_template import (
    METRICS,
    SERVICES,
    _alarms,
    _dashboard_metrics,
    _error_alarm_of,
    _metric_stats,
    _resources,
    resolve_conditions,
    transform,
)


def test_every_alarm_notifies_the_alarm_topic(raw: dict[str, Any]) -> None:
    for params in ({}, {"AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:oncall"}):
        tpl = resolve_conditions(transform(raw, params), params)
        alarms = _alarms(tpl)
        assert len(alarms) >= 11
        # the stack's topic, and the existing one when AlarmTopicArn names it
        expected = [{"Ref": "AlarmTopic"}] + ([{"Ref": "AlarmTopicArn"}] if params else [])
        for name, alarm in alarms.items():
            assert alarm["AlarmActions"] == expected, name
            assert alarm["OKActions"] == expected, name


def test_the_alarm_topic_is_encrypted_and_mails_the_alarm_email(
    transformed: dict[str, Any], without_key: dict[str, Any]
) -> None:
    topic = transformed["Resources"]["AlarmTopic"]["Properties"]
    # CloudWatch cannot publish to a topic under the AWS-managed aws/sns key
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = transformed["Resources"]["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(
        s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and set(s["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        for s in key["KeyPolicy"]["Statement"]
    )
    assert not _resources(transformed, "AWS::SNS::Subscription")  # no AlarmEmail
    (sub,) = _resources(without_key, "AWS::SNS::Subscription").values()
    assert sub["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }


def test_the_alarms_an_on_call_engineer_needs(transformed: dict[str, Any]) -> None:
    alarms = _alarms(transformed)
    watched = {
        (ns, name, json.dumps(dims, sort_keys=True))
        for alarm in alarms.values()
        for ns, name, dims in _metric_stats(alarm)
    }

    def queue(lid: str) -> str:
        return json.dumps({"QueueName": {"Fn::GetAtt": [lid, "QueueName"]}}, sort_keys=True)

    for lid in ("IngestDLQ", "FanoutFailureQueue", "EventFailureQueue"):
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue(lid)) in watched, lid
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue("IngestQueue")) in watched
    assert alarms["IngestQueueAgeAlarm"]["Threshold"] == {"Ref": "QueueAgeThresholdSeconds"}
    for function in SERVICES:
        alarm = alarms[_error_alarm_of(transformed, function)]
        (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]
        assert "errors / invocations" in expression
        assert alarm["Threshold"] == {"Ref": "FunctionErrorRateThreshold"}
    rejects = alarms["RejectsRatioAlarm"]
    assert rejects["Threshold"] == {"Ref": "RejectsRatioThreshold"}
    ids = {m["Id"]: m for m in rejects["Metrics"]}
    assert ids["written"]["MetricStat"]["Metric"]["MetricName"] == "RowsWritten"
    assert ids["rejected"]["MetricStat"]["Metric"]["MetricName"] == "RowsRejected"
    assert (
        ids["ratio"]["Expression"] == "FILL(rejected, 0) / (FILL(written, 0) + FILL(rejected, 0))"
    )
    transfers = {name for _, name, _ in _metric_stats(alarms["TransferFailuresAlarm"])}
    assert "TransfersFailed" in transfers
    for alarm in alarms.values():
        assert alarm["TreatMissingData"] == "notBreaching"


def test_alarms_on_our_metrics_name_real_metrics_and_services(transformed: dict[str, Any]) -> None:
    checked = 0
    for name, alarm in _alarms(transformed).items():
        for ns, metric, dims in _metric_stats(alarm):
            if ns != "sftp-ingest":
                continue
            checked += 1
            assert set(dims) == {"service"}, name
            assert metric in METRICS[dims["service"]], (name, metric)
    assert checked >= 4


def test_the_dashboard_shows_the_flow_with_real_metrics(transformed: dict[str, Any]) -> None:
    shown: set[tuple[str, str, str]] = set()
    for entry in _dashboard_metrics(transformed):
        fields = [f for f in entry if not isinstance(f, dict)]
        namespace, metric, *dims = fields
        dimensions = dict(zip(dims[::2], dims[1::2], strict=True))
        if namespace == "sftp-ingest":
            assert set(dimensions) == {"service"}, entry
            assert metric in METRICS[dimensions["service"]], entry
            shown.add((namespace, metric, dimensions["service"]))
        elif namespace == "AWS/SQS":
            (queue,) = re.fullmatch(r"\$\{(\w+)\.QueueName\}", dimensions["QueueName"]).groups()  # type: ignore[union-attr]
            assert transformed["Resources"][queue]["Type"] == "AWS::SQS::Queue", entry
            shown.add((namespace, metric, queue))
        elif namespace == "AWS/Lambda":
            (function,) = re.fullmatch(r"\$\{(\w+)\}", dimensions["FunctionName"]).groups()  # type: ignore[union-attr]
            assert function in SERVICES, entry
            shown.add((namespace, metric, function))
        else:
            raise AssertionError(f"unexpected namespace in {entry}")
    # files in, chunks queued and in flight, rows, DLQ depth, transfers, uploads
    for metric, service in [
        ("FilesReceived", "fanout"),
        ("ChunksQueued", "fanout"),
        ("RowsWritten", "processor"),
        ("RowsRejected", "processor"),
        ("ChunkDuration", "processor"),
        ("FilesProcessed", "processor"),
        ("TransfersCompleted", "transfer-status"),
        ("TransfersFailed", "transfer-status"),
        ("GatewayUploadsCompleted", "upload-events"),
    ]:
        assert ("sftp-ingest", metric, service) in shown, metric
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "IngestQueue") in shown
    assert ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "IngestQueue") in shown
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "IngestDLQ") in shown
    for function in SERVICES:  # errors and duration per function
        assert ("AWS/Lambda", "Errors", function) in shown, function
        assert ("AWS/Lambda", "Duration", function) in shown, function
