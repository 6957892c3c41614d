"""template.yaml made deployable into moto (ingest_local.localize), checked resource by resource.

moto's CloudFormation cannot create the Versions, Aliases and CodeDeploy resources that
AutoPublishAlias / DeploymentPreference generate: the local deploy leaves exactly those out
(beside the types moto has no model for, as before), lists them, and points every reference to
an alias at its function, so that each event source still reaches the function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from support_template import EVERYTHING, KEY, SERVICES, TEMPLATE, resolve_conditions, transform

from ingest.adapters.aws import AwsTarget
from ingest_local.deploy import load_template
from ingest_local.localize import PreparedTemplate, prepare_cfn_template

#: what safe deployments generate and the local stack leaves out
DEPLOYMENT_TYPES = ("AWS::Lambda::Version", "AWS::Lambda::Alias", "AWS::CodeDeploy::")
#: types moto's CloudFormation has no model for, left out before safe deployments too
UNMODELLED_TYPES = {
    "AWS::CloudWatch::Alarm",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SecretsManager::Secret",
    "AWS::Transfer::Connector",
}
#: handed to the local runtime or emulated through the service's API
LOCAL_TYPES = {
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Transfer::Server",
    "AWS::Lambda::EventSourceMapping",  # on a DynamoDB stream (ingest_local.streams)
}

PARAMETER_SETS = {
    "defaults": {},
    "everything-with-a-key": {**EVERYTHING, "KmsKeyArn": KEY},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsTarget]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield AwsTarget("us-east-1")


def _prepare(aws: AwsTarget, params: dict[str, str]) -> tuple[dict[str, Any], PreparedTemplate]:
    transformed = transform(load_template(TEMPLATE), params)
    return transformed, prepare_cfn_template(aws, transformed, params)


def _listed(prepared: PreparedTemplate) -> dict[str, str]:
    """Logical id → type of each "not emulated" entry ("Id (Type[, if Condition])")."""
    out = {}
    for entry in prepared.not_emulated:
        match = re.fullmatch(r"(\w+) \(([\w:]+)(?:, if \w+)?\)", entry)
        assert match, entry
        out[match[1]] = match[2]
    return out


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_the_local_deploy_leaves_out_exactly_the_deployment_resources_and_keeps_the_rest(
    aws: AwsTarget, params: dict[str, str]
) -> None:
    transformed, prepared = _prepare(aws, params)
    types = {lid: r["Type"] for lid, r in transformed["Resources"].items()}
    listed = _listed(prepared)

    deployment = {lid for lid, t in types.items() if t.startswith(DEPLOYMENT_TYPES)}
    deployment.add("CodeDeployServiceRole")  # the role SAM makes for CodeDeploy
    assert types["CodeDeployServiceRole"] == "AWS::IAM::Role"
    # each function: a version, an alias and a deployment group; one application
    functions = len(SERVICES)
    assert sorted(types[lid] for lid in deployment) == sorted(
        ["AWS::Lambda::Version"] * functions
        + ["AWS::Lambda::Alias"] * functions
        + ["AWS::CodeDeploy::DeploymentGroup"] * functions
        + ["AWS::CodeDeploy::Application", "AWS::IAM::Role"]
    )
    unmodelled = {lid for lid, t in types.items() if t in UNMODELLED_TYPES}
    assert set(listed) == deployment | unmodelled  # the exact list

    # every other resource that exists in this deployment is created or handled locally
    exists = set(resolve_conditions(transformed, params)["Resources"])
    created = set(prepared.template["Resources"])
    local = (
        set(prepared.emulated)
        | {lid for lid, t in types.items() if t == "AWS::Lambda::EventInvokeConfig"}
        | set(prepared.stream_mappings)
    )
    assert created | local == exists - set(listed)
    assert not created & (set(listed) | local)
    assert {types[lid] for lid in local} <= LOCAL_TYPES
    assert set(prepared.async_configs) == set(SERVICES) - {"ProcessorFunction", "OutcomesFunction"}
    # the ledger's stream is played by the local runtime (moto would run the function itself)
    (stream,) = prepared.stream_mappings.values()
    assert (stream.function, stream.table, stream.on_failure) == (
        "OutcomesFunction",
        "LedgerTable",
        "EventFailureQueue",
    )
    assert stream.report_batch_item_failures and stream.bisect and stream.filters


def test_every_local_event_source_reaches_the_function_itself(aws: AwsTarget) -> None:
    transformed, prepared = _prepare(aws, {})
    tpl = prepared.template
    text = json.dumps(tpl)
    for lid, rtype in ((k, v["Type"]) for k, v in transformed["Resources"].items()):
        if rtype.startswith(("AWS::Lambda::Version", "AWS::Lambda::Alias")):
            assert f'"{lid}"' not in text and f"${{{lid}" not in text, lid
    assert "local-not-emulated:" not in json.dumps(tpl["Resources"])

    def arn(function: str) -> dict[str, Any]:
        return {"Fn::GetAtt": [function, "Arn"]}

    resources = tpl["Resources"]
    assert resources["ProcessorChunksMapping"]["Properties"]["FunctionName"] == {
        "Ref": "ProcessorFunction"
    }
    (notification,) = prepared.notifications["LandingBucket"]
    assert notification["Function"] == arn("FanoutFunction")
    targets = {
        lid: [t["Arn"] for t in r["Properties"]["Targets"]]
        for lid, r in resources.items()
        if r["Type"] == "AWS::Events::Rule"
    }
    assert targets == {
        "RetrieveFunctionRetrieveSchedule": [arn("RetrieveFunction")],
        "TransferStatusFunctionConnectorFileEvents": [arn("TransferStatusFunction")],
        "ExpectedFilesFunctionCheckSchedule": [arn("ExpectedFilesFunction")],
        "WaitSweepFunctionWaitSweepSchedule": [arn("WaitSweepFunction")],
        "UploadEventsFunctionTransferUploadOutcome": [arn("UploadEventsFunction")],
    }
    permissions = {
        r["Properties"]["FunctionName"]["Ref"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Permission"
    }
    assert permissions == set(SERVICES) - {"ProcessorFunction", "OutcomesFunction"}
    # the queues of the async functions' failed events, as the runtime will use them
    assert {f: c.on_failure for f, c in prepared.async_configs.items()} == {
        "FanoutFunction": "FanoutFailureQueue",
        "RetrieveFunction": "EventFailureQueue",
        "TransferStatusFunction": "EventFailureQueue",
        "ExpectedFilesFunction": "EventFailureQueue",
        "UploadEventsFunction": "EventFailureQueue",
        "WaitSweepFunction": "EventFailureQueue",
    }
    # outputs naming an alias name the function locally; the function ARNs are unchanged
    for function in SERVICES:
        assert tpl["Outputs"][f"{function}AliasArn"]["Value"] == arn(function)
        assert tpl["Outputs"][f"{function}Arn"]["Value"] == arn(function)
