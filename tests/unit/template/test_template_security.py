"""template.yaml: KmsKeyArn, reserved concurrency, failure destinations, the SFTP endpoint."""

from __future__ import annotations

import json
import re
from typing import Any

from support_template import (
    SERVICES,
    _alarms,
    _kms_statements,
    _metric_stats,
    _referenced,
    _resources,
    resolve_conditions,
)


def test_with_a_key_everything_is_encrypted_with_it(with_key: dict[str, Any]) -> None:
    key = {"Ref": "KmsKeyArn"}
    res = with_key["Resources"]
    (bucket_sse,) = res["LandingBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert bucket_sse["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key,
    }
    queues = _resources(with_key, "AWS::SQS::Queue")
    assert len(queues) == 4
    for name, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == key, name
        assert "SqsManagedSseEnabled" not in queue["Properties"], name
    for name, table in _resources(with_key, "AWS::DynamoDB::Table").items():
        sse = table["Properties"]["SSESpecification"]
        assert sse == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}, name
    groups = _resources(with_key, "AWS::Logs::LogGroup")
    assert len(groups) == len(SERVICES) + 2  # each function's, the server's, the connector's
    for name, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == key, name
    (secret,) = _resources(with_key, "AWS::SecretsManager::Secret").values()
    assert secret["Properties"]["KmsKeyId"] == key
    (topic,) = _resources(with_key, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == key
    assert not _resources(with_key, "AWS::KMS::Key")  # the stack's key is used instead
    for function in SERVICES:  # the environment
        assert res[function]["Properties"]["KmsKeyArn"] == key, function


def test_with_a_key_each_role_may_use_exactly_that_key(with_key: dict[str, Any]) -> None:
    statements = _kms_statements(with_key)
    for owner, statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == {"Ref": "KmsKeyArn"}, owner
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"], owner
    ((policy_id, policy),) = _resources(with_key, "AWS::IAM::Policy").items()
    roles = {r["Ref"] for r in policy["Properties"]["Roles"]}
    # every function's role, the partners' role (uploads) and the connectors' (files, secret)
    assert roles == {f"{f}Role" for f in SERVICES} | {"TransferUserRole", "ConnectorAccessRole"}
    assert all(r in with_key["Resources"] for r in roles)
    assert [owner for owner, _ in statements] == [policy_id]  # no other role or policy


def test_without_a_key_aws_managed_encryption_and_no_kms_statement(
    without_key: dict[str, Any],
) -> None:
    assert _kms_statements(without_key) == []
    res = without_key["Resources"]
    (bucket_sse,) = res["LandingBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert bucket_sse["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    for name, queue in _resources(without_key, "AWS::SQS::Queue").items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name
        assert "KmsMasterKeyId" not in queue["Properties"], name
    for name, table in _resources(without_key, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}, name
    for name, group in _resources(without_key, "AWS::Logs::LogGroup").items():
        assert "KmsKeyId" not in group["Properties"], name
    for function in SERVICES:
        assert "KmsKeyArn" not in res[function]["Properties"], function
    assert "KmsKeyId" not in res["PartnerConnectorSecret"]["Properties"]


def test_every_function_has_reserved_concurrency(transformed: dict[str, Any]) -> None:
    for function in SERVICES:
        reserved = transformed["Resources"][function]["Properties"]["ReservedConcurrentExecutions"]
        if function == "ProcessorFunction":
            # the SQS mapping's MaximumConcurrency, so that it is never throttled by its own limit
            assert reserved == {"Ref": "ProcessorMaxConcurrency"}
        else:
            assert isinstance(reserved, int) and reserved >= 1, function


def test_asynchronously_invoked_functions_send_failed_events_to_an_alarmed_queue(
    transformed: dict[str, Any],
) -> None:
    alarmed = {
        dims["QueueName"]["Fn::GetAtt"][0]
        for alarm in _alarms(transformed).values()
        for ns, name, dims in _metric_stats(alarm)
        if (ns, name) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    }
    configs = {
        c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
        for c in _resources(transformed, "AWS::Lambda::EventInvokeConfig").values()
    }
    # S3, schedules and EventBridge invoke asynchronously; SQS (the processor) and the
    # ledger's stream (outcomes) do not
    assert set(configs) == set(SERVICES) - {"ProcessorFunction", "OutcomesFunction"}
    for function, conf in configs.items():
        destination = conf["DestinationConfig"]["OnFailure"]["Destination"]
        queue = destination["Fn::GetAtt"][0]
        assert transformed["Resources"][queue]["Type"] == "AWS::SQS::Queue", function
        assert queue in alarmed, function


def test_the_sftp_endpoint_is_public_by_default_and_vpc_by_parameter(raw: dict[str, Any]) -> None:
    default = resolve_conditions(raw, {})["Resources"]["TransferServer"]["Properties"]
    assert default["EndpointType"] == {"Ref": "EndpointType"}
    assert raw["Parameters"]["EndpointType"]["Default"] == "PUBLIC"
    assert "EndpointDetails" not in default
    vpc = {
        "EndpointType": "VPC",
        "VpcId": "vpc-0123456789abcdef0",
        "SubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "SecurityGroupIds": "sg-0123456789abcdef0",
    }
    details = resolve_conditions(raw, vpc)["Resources"]["TransferServer"]["Properties"][
        "EndpointDetails"
    ]
    assert details["VpcId"] == {"Ref": "VpcId"}
    assert details["SubnetIds"] == {"Ref": "SubnetIds"}
    assert details["SecurityGroupIds"] == {
        "Fn::Split": [",", {"Fn::Join": [",", {"Ref": "SecurityGroupIds"}]}]
    }
    assert "AddressAllocationIds" not in details  # VPC-internal
    public_vpc = {
        **vpc,
        "AddressAllocationIds": "eipalloc-0123456789abcdef0,eipalloc-0123456789abcdef1",
    }
    details = resolve_conditions(raw, public_vpc)["Resources"]["TransferServer"]["Properties"][
        "EndpointDetails"
    ]
    assert details["AddressAllocationIds"] == {"Ref": "AddressAllocationIds"}


def test_a_vpc_endpoint_without_its_network_is_refused_before_anything_is_created(
    raw: dict[str, Any],
) -> None:
    rule = raw["Rules"]["VpcEndpointNeedsItsNetwork"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EndpointType"}, "VPC"]}
    asserted = [_referenced(a["Assert"]) for a in rule["Assertions"]]
    assert asserted == [{"VpcId"}, {"SubnetIds"}, {"SecurityGroupIds"}]
    # only the functions CloudFormation allows in rules
    allowed = {"Fn::Not", "Fn::Equals", "Fn::Contains", "Ref"}
    assert set(re.findall(r'"(Fn::\w+|Ref)"', json.dumps(rule))) <= allowed
