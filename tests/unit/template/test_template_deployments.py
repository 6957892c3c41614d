"""template.yaml: every function behind its live alias with rollback alarms, event sources
on the alias, JSON logs with retention."""

from __future__ import annotations

from typing import Any

from support_template import ROOT, SERVICES, _alias_of, _error_alarm_of, _resources, transform


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
    # each function's, the Transfer server's and the partner connector's
    assert len(groups) == len(SERVICES) + 2
    assert "PartnerConnectorLogGroup" in groups and "TransferLogGroup" in groups
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    assert without_key["Resources"]["PartnerConnectorLogGroup"]["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/transfer/${PartnerConnector.ConnectorId}"
    }
