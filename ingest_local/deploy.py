"""Deploy THE repo's ``template.yaml`` into moto and read back what the Lambda service needs.

:mod:`ingest_local.localize` makes the template deployable (SAM transform, local-only
adjustments by resource type); this module creates the stack with CloudFormation in moto,
applies bucket settings moto's CloudFormation ignores, and describes the deployed functions
(Handler, resolved environment, timeout) and their event sources.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ingest.adapters.aws import AwsTarget
from ingest_local.localize import (
    AsyncConfig,
    DeployError,
    PreparedTemplate,
    function_of,
    load_template,
    prepare_cfn_template,
    prepare_sam_template,
    sam_transform,
)
from ingest_local.moto_fidelity import find_in_map_with_string_keys
from ingest_local.sandbox import FunctionSpec
from ingest_local.streams import StreamMappingSpec

__all__ = [
    "AsyncConfig",
    "DeployError",
    "DeployedStack",
    "RuleTarget",
    "S3Notification",
    "SqsMapping",
    "StreamMapping",
    "deploy_template",
    "load_template",
    "prepare_sam_template",
    "sam_transform",
]

DEFAULT_STACK_NAME = "sftp-ingest"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


@dataclass
class S3Notification:
    """A bucket → function notification (from the transformed template)."""

    function: str  # logical id
    bucket: str  # physical name
    events: list[str]
    filter_rules: list[dict[str, str]] = field(default_factory=list)


@dataclass
class SqsMapping:
    """An SQS event source mapping, as moto holds it."""

    function: str
    queue_arn: str
    queue_url: str
    batch_size: int
    batching_window: float
    report_batch_item_failures: bool
    max_concurrency: int | None
    uuid: str = ""
    enabled: bool = True


@dataclass
class StreamMapping:
    """A DynamoDB stream mapping (taken out of the template), with its stream and queue."""

    logical_id: str
    stream_arn: str
    #: ``on_failure`` is the OnFailure queue's URL ("" without one)
    spec: StreamMappingSpec


@dataclass
class RuleTarget:
    """An EventBridge rule (schedule or event pattern) with a function as a target."""

    function: str
    rule_logical_id: str
    rule_name: str
    rule_arn: str
    event_bus: str
    target: dict[str, Any]  # the target as moto holds it (Id, Arn, Input …)
    schedule: str | None = None
    event_pattern: str | None = None
    enabled: bool = True


@dataclass
class DeployedStack:
    """Everything the runtime and ``endpoints.json`` need about a deployed stack."""

    stack_name: str
    region: str
    endpoint_url: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    resource_types: dict[str, str]
    functions: dict[str, FunctionSpec]
    s3_notifications: list[S3Notification]
    sqs_mappings: list[SqsMapping]
    rules: list[RuleTarget]
    emulated: dict[str, str] = field(default_factory=dict)  # logical id → physical id
    async_configs: dict[str, AsyncConfig] = field(default_factory=dict)
    not_emulated: list[str] = field(default_factory=list)  # "LogicalId (Type)", left out
    stream_mappings: list[StreamMapping] = field(default_factory=list)

    def physical_ids_of(self, resource_type: str) -> list[str]:
        """Physical ids of every resource of ``resource_type`` (e.g. ``AWS::S3::Bucket``)."""
        return [
            self.physical_ids[lid]
            for lid, rtype in self.resource_types.items()
            if rtype == resource_type and lid in self.physical_ids
        ]


# --- deploy ------------------------------------------------------------------------------------


def _dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README.txt", "local stack: the code runs from the checkout\n")
    return buf.getvalue()


def deploy_template(
    aws: AwsTarget,
    template_path: Path,
    *,
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: dict[str, str] | None = None,
) -> DeployedStack:
    """Transform ``template_path`` and create it as a CloudFormation stack at ``aws``."""
    if aws.endpoint_url is None:
        raise DeployError(
            "deploy_template only deploys to a local endpoint; use 'sam deploy' for AWS"
        )
    find_in_map_with_string_keys()  # the moto server runs in this process
    code_bucket = f"{stack_name}-local-code".lower()
    s3 = aws.shared_client("s3")
    s3.create_bucket(Bucket=code_bucket)
    s3.put_object(Bucket=code_bucket, Key="code.zip", Body=_dummy_zip())
    sam = prepare_sam_template(load_template(template_path), f"s3://{code_bucket}/code.zip")
    transformed = sam_transform(sam, aws.region, parameters or {})
    prepared = prepare_cfn_template(aws, transformed, parameters or {})

    cfn = aws.shared_client("cloudformation")
    try:
        cfn.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(prepared.template),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()
            ],
            Capabilities=CAPABILITIES,
        )
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        raise DeployError(f"CloudFormation create_stack failed: {exc}") from exc
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
        failed = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in events
            if e["ResourceStatus"].endswith("FAILED")
        ]
        raise DeployError(f"stack {stack_name} is {stack['StackStatus']}: {failed}")
    apply_bucket_properties(aws, stack_name, prepared.template)
    return describe_deployment(aws, stack_name, prepared)


def apply_bucket_properties(aws: AwsTarget, stack_name: str, cfn_template: dict[str, Any]) -> None:
    """Bucket settings moto's CloudFormation ignores (it applies encryption and tags only).

    Versioning matters here: events and chunks carry the object's version id.
    """
    s3 = aws.shared_client("s3")
    cfn = aws.shared_client("cloudformation")
    for lid, res in cfn_template["Resources"].items():
        if res.get("Type") != "AWS::S3::Bucket":
            continue
        props = res.get("Properties", {})
        bucket = cfn.describe_stack_resource(StackName=stack_name, LogicalResourceId=lid)[
            "StackResourceDetail"
        ]["PhysicalResourceId"]
        status = props.get("VersioningConfiguration", {}).get("Status")
        if status in ("Enabled", "Suspended"):
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
        block = props.get("PublicAccessBlockConfiguration")
        if isinstance(block, dict) and all(isinstance(v, bool) for v in block.values()):
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)


def describe_deployment(
    aws: AwsTarget, stack_name: str, prepared: PreparedTemplate
) -> DeployedStack:
    """Read the deployed functions and event sources back from moto."""
    cfn = aws.shared_client("cloudformation")
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    physical, types = _resources(cfn, stack_name, prepared)
    functions = _functions(aws.shared_client("lambda"), types, physical)
    sqs = aws.shared_client("sqs")
    return DeployedStack(
        stack_name=stack_name,
        region=aws.region,
        endpoint_url=aws.endpoint_url or "",
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        physical_ids=physical,
        resource_types=types,
        functions=functions,
        s3_notifications=_s3_notifications(prepared, physical, functions),
        sqs_mappings=_sqs_mappings(aws.shared_client("lambda"), sqs, functions),
        rules=_rules(aws.shared_client("events"), prepared, physical, types, functions),
        emulated={lid: v["Ref"] for lid, v in prepared.emulated.items()},
        async_configs=_async_configs(sqs, prepared, physical, functions),
        not_emulated=prepared.not_emulated,
        stream_mappings=_stream_mappings(aws, prepared, physical, functions),
    )


def _resources(
    cfn: Any, stack_name: str, prepared: PreparedTemplate
) -> tuple[dict[str, str], dict[str, str]]:
    """Physical ids and types of every resource, the emulated ones included."""
    physical: dict[str, str] = {}
    types: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for r in page["StackResourceSummaries"]:
            physical[r["LogicalResourceId"]] = r["PhysicalResourceId"]
            types[r["LogicalResourceId"]] = r["ResourceType"]
    for lid, values in prepared.emulated.items():
        physical[lid] = values["Ref"]
        types[lid] = prepared.emulated_types[lid]
    return physical, types


def _functions(
    lam: Any, types: dict[str, str], physical: dict[str, str]
) -> dict[str, FunctionSpec]:
    functions: dict[str, FunctionSpec] = {}
    for lid, rtype in types.items():
        if rtype != "AWS::Lambda::Function":
            continue
        conf = lam.get_function_configuration(FunctionName=physical[lid])
        env = conf.get("Environment", {}).get("Variables", {})
        functions[lid] = FunctionSpec(
            logical_id=lid,
            name=conf["FunctionName"],
            arn=conf["FunctionArn"],
            handler=conf["Handler"],
            # CloudFormation passes numbers through; Lambda's environment holds strings.
            environment={k: str(v) for k, v in env.items()},
            timeout=int(conf.get("Timeout", 3)),
            memory=int(conf.get("MemorySize", 128)),
        )
    return functions


def _s3_notifications(
    prepared: PreparedTemplate, physical: dict[str, str], functions: dict[str, FunctionSpec]
) -> list[S3Notification]:
    return [
        S3Notification(
            function=fn,
            bucket=physical[bucket_lid],
            events=[conf["Event"]] if isinstance(conf["Event"], str) else list(conf["Event"]),
            filter_rules=conf.get("Filter", {}).get("S3Key", {}).get("Rules", []),
        )
        for bucket_lid, confs in prepared.notifications.items()
        for conf in confs
        if (fn := function_of(conf.get("Function"))) in functions
    ]


def _sqs_mappings(lam: Any, sqs: Any, functions: dict[str, FunctionSpec]) -> list[SqsMapping]:
    mappings: list[SqsMapping] = []
    for lid, spec in functions.items():
        for m in lam.list_event_source_mappings(FunctionName=spec.name)["EventSourceMappings"]:
            arn = m["EventSourceArn"]
            if not arn.startswith("arn:aws:sqs:"):
                continue
            mappings.append(
                SqsMapping(
                    function=lid,
                    queue_arn=arn,
                    queue_url=sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"],
                    batch_size=int(m.get("BatchSize", 10)),
                    batching_window=float(m.get("MaximumBatchingWindowInSeconds", 0)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in m.get("FunctionResponseTypes", []),
                    max_concurrency=m.get("ScalingConfig", {}).get("MaximumConcurrency"),
                    uuid=m["UUID"],
                    enabled=m.get("State", "Enabled") == "Enabled",
                )
            )
    return mappings


def _rules(
    events: Any,
    prepared: PreparedTemplate,
    physical: dict[str, str],
    types: dict[str, str],
    functions: dict[str, FunctionSpec],
) -> list[RuleTarget]:
    by_arn = {f.arn: lid for lid, f in functions.items()}
    by_name = {f.name: lid for lid, f in functions.items()}
    rules: list[RuleTarget] = []
    for lid in (lid for lid, rtype in types.items() if rtype == "AWS::Events::Rule"):
        props = prepared.template["Resources"].get(lid, {}).get("Properties", {})
        bus = props.get("EventBusName") if isinstance(props.get("EventBusName"), str) else None
        bus = bus or "default"
        name = physical[lid].rsplit("/", 1)[-1].rsplit("|", 1)[-1]
        rule = events.describe_rule(Name=name, EventBusName=bus)
        for target in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]:
            fn = by_arn.get(target["Arn"]) or by_name.get(target["Arn"].rsplit(":", 1)[-1])
            if fn is None:
                continue
            rules.append(
                RuleTarget(
                    function=fn,
                    rule_logical_id=lid,
                    rule_name=name,
                    rule_arn=rule["Arn"],
                    event_bus=bus,
                    target=dict(target),
                    schedule=rule.get("ScheduleExpression"),
                    event_pattern=rule.get("EventPattern"),
                    enabled=rule.get("State", "ENABLED") == "ENABLED",
                )
            )
    return rules


def _async_configs(
    sqs: Any,
    prepared: PreparedTemplate,
    physical: dict[str, str],
    functions: dict[str, FunctionSpec],
) -> dict[str, AsyncConfig]:
    def queue_url(lid: str) -> str:
        if lid not in physical:
            return ""
        return str(sqs.get_queue_url(QueueName=physical[lid].rsplit("/", 1)[-1])["QueueUrl"])

    return {
        fn: AsyncConfig(conf.max_retries, queue_url(conf.on_failure))
        for fn, conf in prepared.async_configs.items()
        if fn in functions
    }


def _stream_mappings(
    aws: AwsTarget,
    prepared: PreparedTemplate,
    physical: dict[str, str],
    functions: dict[str, FunctionSpec],
) -> list[StreamMapping]:
    ddb, sqs = aws.shared_client("dynamodb"), aws.shared_client("sqs")
    found: list[StreamMapping] = []
    for lid, spec in prepared.stream_mappings.items():
        if spec.function not in functions or spec.table not in physical:
            continue
        table = ddb.describe_table(TableName=physical[spec.table])["Table"]
        queue = ""
        if spec.on_failure in physical:
            name = physical[spec.on_failure].rsplit("/", 1)[-1]
            queue = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        resolved = StreamMappingSpec(**{**vars(spec), "on_failure": queue})
        found.append(StreamMapping(lid, str(table["LatestStreamArn"]), resolved))
    return found
