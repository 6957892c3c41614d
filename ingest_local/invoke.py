"""``ingest invoke``: run one deployed function once, like ``sam local invoke``, without Docker.

The handler and environment come from the function as deployed in the running local stack
(the template's ``Handler`` and its resolved ``Environment``), so nothing is configured twice.
The function runs in a fresh sandbox process, as a cold start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ingest.adapters.aws import AwsTarget
from ingest.cli.context import ensure_local_credentials
from ingest.cli.endpoints import read_endpoints
from ingest.errors import ConfigError
from ingest_local.sandbox import FunctionSpec, sandbox_environment
from ingest_local.worker import FunctionWorker


def deployed_function(aws: AwsTarget, stack: str, logical_id: str) -> FunctionSpec:
    """The function ``logical_id`` of ``stack`` as deployed (Handler, environment, limits)."""
    cfn = aws.client("cloudformation")
    try:
        resource = cfn.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    except ClientError as exc:
        names = sorted(
            r["LogicalResourceId"]
            for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::Lambda::Function"
        )
        raise ConfigError(
            f"stack {stack} has no function {logical_id!r} (functions: {names})"
        ) from exc
    detail = resource["StackResourceDetail"]
    if detail["ResourceType"] != "AWS::Lambda::Function":
        raise ConfigError(f"{logical_id} is a {detail['ResourceType']}, not a function")
    conf = aws.client("lambda").get_function_configuration(
        FunctionName=detail["PhysicalResourceId"]
    )
    return FunctionSpec(
        logical_id=logical_id,
        name=conf["FunctionName"],
        arn=conf["FunctionArn"],
        handler=conf["Handler"],
        environment={
            k: str(v) for k, v in conf.get("Environment", {}).get("Variables", {}).items()
        },
        timeout=int(conf.get("Timeout", 3)),
        memory=int(conf.get("MemorySize", 128)),
    )


def invoke_function(
    state_dir: Path, logical_id: str, event: dict[str, Any], *, request_id: str
) -> Any:
    """Invoke ``logical_id`` of the stack running in ``state_dir`` with ``event``; its result.

    Raises :class:`~ingest_local.worker.FunctionError` if the handler raised.
    """
    endpoints = read_endpoints(state_dir)
    ensure_local_credentials()
    aws = AwsTarget(region=endpoints.region, endpoint_url=endpoints.aws_endpoint_url)
    stack = endpoints.resources.get("stack")
    if not stack:
        raise ConfigError(f"{state_dir}/endpoints.json names no stack: restart 'ingest up'")
    spec = deployed_function(aws, stack, logical_id)
    code_root = Path(endpoints.resources.get("code_root") or ".").resolve()
    worker = FunctionWorker(
        function_name=spec.name,
        handler=spec.handler,
        environment=sandbox_environment(
            spec,
            endpoint_url=endpoints.aws_endpoint_url,
            region=endpoints.region,
            code_root=code_root,
        ),
        timeout=spec.timeout,
        memory=spec.memory,
        cwd=code_root,
    )
    try:
        return worker.invoke(event, request_id)
    finally:
        worker.close()
