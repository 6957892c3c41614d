"""Making a transformed template deployable into moto: emulation, dropping, references."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from ingest.adapters.aws import AwsTarget
from ingest_local.localize import prepare_cfn_template


@pytest.fixture
def aws(aws_env: None) -> Iterator[AwsTarget]:
    with mock_aws():
        yield AwsTarget("us-east-1")


def template() -> dict[str, object]:
    return {
        "Resources": {
            "Server": {"Type": "AWS::Transfer::Server", "Properties": {"Domain": "S3"}},
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "DependsOn": ["Server", "Alarm"],
                "Properties": {
                    "Tags": [
                        {"Key": "ref", "Value": {"Ref": "Server"}},
                        {"Key": "getatt", "Value": {"Fn::GetAtt": ["Server", "ServerId"]}},
                        {"Key": "getatt-dotted", "Value": {"Fn::GetAtt": "Server.Arn"}},
                        {
                            "Key": "sub",
                            "Value": {"Fn::Sub": "id-${Server.ServerId}-${AWS::Region}"},
                        },
                        {
                            "Key": "sub-vars",
                            "Value": {"Fn::Sub": ["${Server}/${X}", {"X": {"Ref": "Server"}}]},
                        },
                        {"Key": "alarm", "Value": {"Ref": "Alarm"}},
                    ]
                },
            },
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Condition": "Maybe", "Properties": {}},
            "Invoke": {
                "Type": "AWS::Lambda::EventInvokeConfig",
                "Properties": {
                    "FunctionName": {"Ref": "Fn"},
                    "Qualifier": "$LATEST",
                    "MaximumRetryAttempts": 1,
                    "DestinationConfig": {
                        "OnFailure": {"Destination": {"Fn::GetAtt": ["Queue", "Arn"]}}
                    },
                },
            },
            "Version": {"Type": "AWS::Lambda::Version", "Properties": {}},
        },
        "Outputs": {
            "ServerId": {"Value": {"Fn::GetAtt": ["Server", "ServerId"]}},
            "AlarmName": {"Value": {"Ref": "Alarm"}},
            "QueueUrl": {"Value": {"Ref": "Queue"}},
        },
    }


def test_emulated_server_is_created_and_every_reference_resolved(aws: AwsTarget) -> None:
    prepared = prepare_cfn_template(aws, template())
    server_id = prepared.emulated["Server"]["ServerId"]
    assert aws.client("transfer").describe_server(ServerId=server_id)["Server"]["Domain"] == "S3"
    resources = prepared.template["Resources"]
    assert set(resources) == {"Queue"}  # Server emulated; Alarm, Invoke, Version left out
    assert "DependsOn" not in resources["Queue"]
    tags = {t["Key"]: t["Value"] for t in resources["Queue"]["Properties"]["Tags"]}
    assert tags["ref"] == server_id
    assert tags["getatt"] == server_id
    assert tags["getatt-dotted"] == f"arn:aws:transfer:us-east-1:123456789012:server/{server_id}"
    assert tags["sub"] == {"Fn::Sub": f"id-{server_id}-${{AWS::Region}}"}
    assert tags["sub-vars"] == {"Fn::Sub": [f"{server_id}/${{X}}", {"X": server_id}]}
    assert tags["alarm"] == "local-not-emulated:Alarm"
    assert prepared.template["Outputs"] == {
        "ServerId": {"Value": server_id},
        "QueueUrl": {"Value": {"Ref": "Queue"}},
    }
    # the Version of AutoPublishAlias is left out and, since issue 11, listed as well
    assert prepared.not_emulated == [
        "Alarm (AWS::CloudWatch::Alarm, if Maybe)",
        "Version (AWS::Lambda::Version)",
    ]
    conf = prepared.async_configs["Fn"]
    assert (conf.max_retries, conf.on_failure) == (1, "Queue")
