"""template.yaml: cfn-lint, the SAM transform, and the properties the issue fixes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ingest_local.deploy import load_template, prepare_sam_template, sam_transform

ROOT = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def transformed(raw: dict[str, Any]) -> dict[str, Any]:
    """The template as deployed with its defaults."""
    return resolve_conditions(transform(raw, {}), {})


#: a customer-managed key, and parameters that create every optional resource
KEY = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
EVERYTHING = {
    "PartnerSftpUrl": "sftp://sftp.partner.example",
    "PartnerSftpUser": "ingest",
    "PartnerTrustedHostKeys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsa",
    "AlarmEmail": "oncall@example.com",
}


@pytest.fixture(scope="module")
def with_key(raw: dict[str, Any]) -> dict[str, Any]:
    """Deployed with ``KmsKeyArn`` and every optional resource."""
    params = {**EVERYTHING, "KmsKeyArn": KEY}
    return resolve_conditions(transform(raw, params), params)


@pytest.fixture(scope="module")
def without_key(raw: dict[str, Any]) -> dict[str, Any]:
    """Deployed without ``KmsKeyArn``, with every optional resource."""
    return resolve_conditions(transform(raw, EVERYTHING), EVERYTHING)


def _param_default(raw: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return raw["Parameters"][value["Ref"]]["Default"]
    return value


def _resources(tpl: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == rtype}


def test_cfn_lint_passes() -> None:
    exe = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")
    proc = subprocess.run([exe, str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_queue_visibility_is_six_processor_timeouts_for_every_allowed_timeout(
    raw: dict[str, Any],
) -> None:
    processor = raw["Resources"]["ProcessorFunction"]["Properties"]
    assert processor["Timeout"] == {"Ref": "ProcessorTimeoutSeconds"}
    queue = raw["Resources"]["IngestQueue"]["Properties"]
    # derived from the parameter, not a constant
    assert queue["VisibilityTimeout"] == {
        "Fn::FindInMap": ["QueueVisibility", {"Ref": "ProcessorTimeoutSeconds"}, "Seconds"]
    }
    allowed = raw["Parameters"]["ProcessorTimeoutSeconds"]["AllowedValues"]
    mapping = raw["Mappings"]["QueueVisibility"]
    assert sorted(mapping, key=int) == [str(t) for t in sorted(allowed)]
    for timeout in allowed:
        assert mapping[str(timeout)]["Seconds"] == 6 * timeout


def test_redrive_to_the_dlq_after_five_receives(raw: dict[str, Any]) -> None:
    redrive = raw["Resources"]["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert int(_param_default(raw, redrive["maxReceiveCount"])) == 5
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["IngestDLQ", "Arn"]}


def test_storage_is_encrypted_versioned_and_private(raw: dict[str, Any]) -> None:
    raw = resolve_conditions(raw, {})  # as deployed with the defaults
    bucket = raw["Resources"]["LandingBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policy = raw["Resources"]["LandingBucketPolicy"]["Properties"]["PolicyDocument"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        for s in policy["Statement"]
    )
    for name, queue in _resources(raw, "AWS::SQS::Queue").items():
        assert queue["Properties"].get("SqsManagedSseEnabled") or queue["Properties"].get(
            "KmsMasterKeyId"
        ), name
    for name in ("RecordsTable", "LedgerTable"):
        table = raw["Resources"][name]["Properties"]
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert table["SSESpecification"]["SSEEnabled"] is True


def test_functions_are_traced_python311_and_built_by_the_makefile(raw: dict[str, Any]) -> None:
    glob = raw["Globals"]["Function"]
    assert glob["Tracing"] == "Active"
    assert glob["Runtime"] == "python3.13"
    assert "POWERTOOLS_METRICS_NAMESPACE" in glob["Environment"]["Variables"]
    makefile = (ROOT / "Makefile").read_text()
    for name, fn in _resources(raw, "AWS::Serverless::Function").items():
        assert fn.get("Metadata", {}).get("BuildMethod") == "makefile", name
        assert re.search(rf"^build-[\w -]*\bbuild-{name}\b|^build-{name}\b", makefile, re.M), name
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        assert "POWERTOOLS_SERVICE_NAME" in env, name


def test_processor_reports_batch_item_failures_with_bounded_concurrency(
    transformed: dict[str, Any],
) -> None:
    mappings = [
        m["Properties"]
        for m in _resources(transformed, "AWS::Lambda::EventSourceMapping").values()
        # the processor's alias (AutoPublishAlias: live), which CodeDeploy shifts
        if m["Properties"]["FunctionName"] == {"Ref": "ProcessorFunctionAliaslive"}
    ]
    assert len(mappings) == 1
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings[0]["ScalingConfig"]["MaximumConcurrency"]
    # one chunk an invocation: ten chunks of a large file in one invocation would run one
    # after another, and would not fit in its timeout
    assert mappings[0]["BatchSize"] == 1


def test_ledger_items_with_an_expiry_expire(raw: dict[str, Any]) -> None:
    """Chunk leases (ingest/adapters/leases.py) and transfer status records
    (connectors/status.py) carry ``expires_at``; the ledger's TTL deletes them."""
    ttl = raw["Resources"]["LedgerTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}


def test_the_processor_has_one_whole_vcpu_and_chunks_sized_for_it(raw: dict[str, Any]) -> None:
    from ingest.domain.chunks import DEFAULT_CHUNK_SIZE

    processor = raw["Resources"]["ProcessorFunction"]["Properties"]
    assert processor["MemorySize"] >= 1769  # Lambda's size for one full vCPU
    # the stack's default chunk size is the code's
    assert raw["Parameters"]["ChunkSizeMiB"]["Default"] * 1024 * 1024 == DEFAULT_CHUNK_SIZE


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


def test_no_wildcard_resource_on_data_actions(transformed: dict[str, Any]) -> None:
    checked = 0
    for role, statement in _statements(transformed):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        data = [a for a in actions if a.split(":")[0] in DATA_SERVICES]
        if not data:
            continue
        checked += 1
        resources = statement.get("Resource", [])
        resources = resources if isinstance(resources, list) else [resources]
        assert "*" not in resources, f"{role} grants {data} on every resource"
        assert all(not (isinstance(r, str) and r.endswith(":*")) for r in resources), role
    assert checked >= 4  # the policies were really found and inspected


def test_no_broad_managed_policies(transformed: dict[str, Any]) -> None:
    for name, role in _resources(transformed, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = str(arn)
            assert "FullAccess" not in text and "AdministratorAccess" not in text, (name, text)


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


def test_every_resource_has_an_output(raw: dict[str, Any]) -> None:
    outputs = _referenced(raw["Outputs"])
    missing = [
        name
        for name, resource in raw["Resources"].items()
        if resource["Type"] not in NO_OUTPUT_TYPES and name not in outputs
    ]
    assert not missing, f"resources without an Output: {missing}"


def test_samconfig_has_default_and_prod() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["deploy"]["parameters"]["capabilities"]
    assert config["prod"]["deploy"]["parameters"]["capabilities"]
    assert (
        config["prod"]["global"]["parameters"]["stack_name"]
        != config["default"]["global"]["parameters"]["stack_name"]
    )


def test_sqs_consumers_get_queue_scoped_permissions_not_the_managed_role(
    transformed: dict[str, Any],
) -> None:
    """SAM's SQS event attaches AWSLambdaSQSQueueExecutionRole (receive/delete on every
    queue); the processor's mapping is a plain resource with its own scoped statement."""
    for name, role in _resources(transformed, "AWS::IAM::Role").items():
        arns = [str(a) for a in role["Properties"].get("ManagedPolicyArns", [])]
        assert not any("SQSQueueExecutionRole" in a for a in arns), (name, arns)
    mappings = _resources(transformed, "AWS::Lambda::EventSourceMapping")
    chunks = mappings["ProcessorChunksMapping"]["Properties"]
    assert chunks["EventSourceArn"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert chunks["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    consume = [
        s
        for role, s in _statements(transformed)
        if role.startswith("ProcessorFunction") and s.get("Sid") == "ConsumeChunks"
    ]
    assert len(consume) == 1
    assert sorted(consume[0]["Action"]) == [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    assert consume[0]["Resource"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}


# --- safe deployments (issue 11, section 2) ----------------------------------------------------

#: every function, by logical id, and its POWERTOOLS_SERVICE_NAME (the metrics' `service`)
SERVICES = {
    "FanoutFunction": "fanout",
    "ProcessorFunction": "processor",
    "RetrieveFunction": "retrieve",
    "TransferStatusFunction": "transfer-status",
    "UploadEventsFunction": "upload-events",
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


def test_the_template_names_each_function_and_its_service(raw: dict[str, Any]) -> None:
    functions = _resources(raw, "AWS::Serverless::Function")
    assert {
        lid: f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for lid, f in functions.items()
    } == SERVICES


def test_every_function_is_deployed_through_its_live_alias_with_rollback_alarms(
    transformed: dict[str, Any],
) -> None:
    alarms = _resources(transformed, "AWS::CloudWatch::Alarm")
    groups = _resources(transformed, "AWS::CodeDeploy::DeploymentGroup")
    for function in SERVICES:
        _, alias = _alias_of(transformed, function)
        assert alias["Properties"]["Name"] == "live"
        version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert transformed["Resources"][version]["Type"] == "AWS::Lambda::Version"
        group_ref = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"]
        group = groups[group_ref["Ref"]]["Properties"]
        assert group["AutoRollbackConfiguration"]["Enabled"] is True
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
        assert group["AlarmConfiguration"]["Enabled"] is True
        rollback = [a["Name"]["Ref"] for a in group["AlarmConfiguration"]["Alarms"]]
        assert all(name in alarms for name in rollback), (function, rollback)
        expected = {_error_alarm_of(transformed, function)}
        if function == "ProcessorFunction":
            expected.add("IngestDLQAlarm")
        assert set(rollback) == expected, function


def test_the_deployment_type_is_a_parameter_and_prod_deploys_a_canary(
    raw: dict[str, Any], transformed: dict[str, Any]
) -> None:
    import tomllib

    assert raw["Globals"]["Function"]["DeploymentPreference"]["Type"] == {"Ref": "DeploymentType"}
    param = raw["Parameters"]["DeploymentType"]
    assert param["Default"] == "AllAtOnce"
    assert "Canary10Percent5Minutes" in param["AllowedValues"]

    def configs(tpl: dict[str, Any]) -> set[str]:
        return {
            g["Properties"]["DeploymentConfigName"]["Fn::Sub"][1]["ConfigName"]
            for g in _resources(tpl, "AWS::CodeDeploy::DeploymentGroup").values()
        }

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())

    def overrides(env: str) -> dict[str, str]:
        text = config[env]["deploy"]["parameters"].get("parameter_overrides", "")
        return dict(pair.split("=", 1) for pair in text.split())

    assert overrides("prod")["DeploymentType"] == "Canary10Percent5Minutes"
    assert overrides("default").get("DeploymentType", "AllAtOnce") == "AllAtOnce"
    assert configs(transformed) == {"AllAtOnce"}
    canary = transform(raw, {"DeploymentType": "Canary10Percent5Minutes"})
    assert configs(canary) == {"Canary10Percent5Minutes"}


def test_every_event_source_invokes_the_alias(transformed: dict[str, Any]) -> None:
    aliases = {f: {"Ref": _alias_of(transformed, f)[0]} for f in SERVICES}
    invoked: dict[str, int] = dict.fromkeys(SERVICES, 0)
    bucket = transformed["Resources"]["LandingBucket"]["Properties"]
    for conf in bucket["NotificationConfiguration"]["LambdaConfigurations"]:
        assert conf["Function"] == aliases["FanoutFunction"]
        invoked["FanoutFunction"] += 1
    for mapping in _resources(transformed, "AWS::Lambda::EventSourceMapping").values():
        assert mapping["Properties"]["FunctionName"] in aliases.values()
        invoked[mapping["Properties"]["FunctionName"]["Ref"].removesuffix("Aliaslive")] += 1
    for rule in _resources(transformed, "AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            assert target["Arn"] in aliases.values(), target
            invoked[target["Arn"]["Ref"].removesuffix("Aliaslive")] += 1
    for lid, permission in _resources(transformed, "AWS::Lambda::Permission").items():
        assert permission["Properties"]["FunctionName"] in aliases.values(), lid
    for lid, conf in _resources(transformed, "AWS::Lambda::EventInvokeConfig").items():
        assert conf["Properties"]["Qualifier"] == "live", lid
    # S3 → fanout, SQS → processor, a schedule → retrieve, EventBridge → the other two
    assert invoked == dict.fromkeys(SERVICES, 1)


def test_function_arn_outputs_still_name_the_functions(raw: dict[str, Any]) -> None:
    for function in SERVICES:
        assert raw["Outputs"][f"{function}Arn"]["Value"] == {"Fn::GetAtt": [function, "Arn"]}
        assert raw["Outputs"][f"{function}AliasArn"]["Value"] == {"Ref": f"{function}.Alias"}


# --- observability (section 3) -------------------------------------------------------------------

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
}


def test_every_function_logs_json_to_its_own_log_group_with_retention(
    transformed: dict[str, Any],
) -> None:
    groups = _resources(transformed, "AWS::Logs::LogGroup")
    for function, service in SERVICES.items():
        logging = transformed["Resources"][function]["Properties"]["LoggingConfig"]
        assert logging["LogFormat"] == "JSON"
        assert logging["ApplicationLogLevel"] == {
            "Fn::FindInMap": ["LambdaLogLevels", {"Ref": "LogLevel"}, "Level"]
        }
        assert logging["SystemLogLevel"] in {"INFO", "WARN"}
        group = groups[logging["LogGroup"]["Ref"]]["Properties"]
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{service}"}
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert transformed["Resources"][function]["Properties"]["TracingConfig"] == {
            "Mode": "Active"
        }


def test_lambda_log_levels_follow_the_log_level_parameter(raw: dict[str, Any]) -> None:
    levels = raw["Mappings"]["LambdaLogLevels"]
    assert set(levels) == set(raw["Parameters"]["LogLevel"]["AllowedValues"])
    lambda_levels = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
    assert all(v["Level"] in lambda_levels for v in levels.values())


def test_every_log_group_has_the_retention_parameter(without_key: dict[str, Any]) -> None:
    groups = _resources(without_key, "AWS::Logs::LogGroup")
    # the five functions', the Transfer server's and the partner connector's
    assert len(groups) == 7
    assert "PartnerConnectorLogGroup" in groups and "TransferLogGroup" in groups
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    assert without_key["Resources"]["PartnerConnectorLogGroup"]["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/transfer/${PartnerConnector.ConnectorId}"
    }


def _alarms(tpl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in _resources(tpl, "AWS::CloudWatch::Alarm").items()}


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


def _dashboard_metrics(tpl: dict[str, Any]) -> list[list[Any]]:
    (dashboard,) = _resources(tpl, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"])
    metrics = []
    for widget in body["widgets"]:
        assert widget["type"] == "metric"
        assert widget["properties"]["region"] == "${AWS::Region}"
        metrics += widget["properties"]["metrics"]
    return metrics


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


# --- security (section 4) ------------------------------------------------------------------------


def _kms_statements(tpl: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for owner, statement in _statements(tpl):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if any(str(a).lower().startswith("kms:") for a in actions):
            found.append((owner, statement))
    return found


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
    assert len(groups) == 7
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
    # S3, schedules and EventBridge invoke asynchronously; SQS (the processor) does not
    assert set(configs) == set(SERVICES) - {"ProcessorFunction"}
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
