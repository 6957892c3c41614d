"""Which deployment a CLI command talks to: the local stack (a state dir) or AWS (a stack)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct, field

from ingest.adapters.aws import DEFAULT_REGION, AwsTarget
from ingest.cli.endpoints import (
    DEFAULT_STATE_DIR,
    ENV_STATE_DIR,
    Endpoints,
    found_state_dir,
    read_endpoints,
)
from ingest.errors import ConfigError

DEFAULT_STACK = "sftp-ingest"
#: moto accepts any credentials: what a command against the local stack uses when none are set
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def ensure_local_credentials() -> None:
    """Give this process fake AWS credentials if it has none: moto accepts any, and a user
    talking to the local stack should not need an AWS account configured."""
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        os.environ.update(FAKE_CREDENTIALS)


class Deployment(Struct):
    """An AWS target plus the names of the deployed resources (bucket, table, queues …)."""

    aws: AwsTarget
    resources: dict[str, str]
    endpoints: Endpoints | None = None
    state_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.state_dir is not None

    def resource(self, name: str) -> str:
        """A resource name, with an error that says which one is missing."""
        try:
            return self.resources[name]
        except KeyError as exc:
            raise ConfigError(
                f"the deployment has no {name!r} resource (known: {sorted(self.resources)})"
            ) from exc


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``--state-dir`` (local stack) and ``--stack`` / ``--region`` (AWS)."""
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="talk to the local stack whose endpoints.json is in this directory "
        f"(default: ${ENV_STATE_DIR}, or ./{DEFAULT_STATE_DIR} when a stack runs there)",
    )
    parser.add_argument(
        "--stack",
        default=None,
        help=f"talk to this deployed CloudFormation stack in AWS (default: {DEFAULT_STACK})",
    )
    parser.add_argument("--region", default=None, help="AWS region (default: from your profile)")


def resolve_deployment(args: argparse.Namespace) -> Deployment:
    """Local when a state dir is named or found, else the AWS stack's outputs."""
    state_dir: Path | None = getattr(args, "state_dir", None)
    if state_dir is None and not getattr(args, "stack", None):
        state_dir = found_state_dir()
    if state_dir is not None:
        endpoints = read_endpoints(state_dir)
        # moto accepts any credentials; a newcomer needs no AWS account for the local stack
        ensure_local_credentials()
        return Deployment(
            aws=AwsTarget(region=endpoints.region, endpoint_url=endpoints.aws_endpoint_url),
            resources=endpoints.resources,
            endpoints=endpoints,
            state_dir=state_dir,
        )
    region = getattr(args, "region", None) or os.environ.get("AWS_REGION") or DEFAULT_REGION
    aws = AwsTarget(region=region)
    return Deployment(aws=aws, resources=stack_resources(aws, args.stack or DEFAULT_STACK))


def stack_resources(aws: AwsTarget, stack: str) -> dict[str, str]:
    """Resource names from a stack's outputs (``LandingBucketName`` → ``bucket``)."""
    cfn = aws.client("cloudformation")
    try:
        outputs = cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except (ClientError, BotoCoreError) as exc:  # NoCredentialsError is a BotoCoreError
        raise ConfigError(f"cannot read the outputs of stack {stack!r}: {exc}") from exc
    return resources_from_outputs({o["OutputKey"]: o["OutputValue"] for o in outputs})


#: template Output name → the short resource name the code and endpoints.json use.
OUTPUT_RESOURCES = {
    "LandingBucketName": "bucket",
    "IngestQueueUrl": "queue_url",
    "IngestDLQUrl": "dlq_url",
    "RecordsTableName": "table",
    "LedgerTableName": "ledger_table",
    "TransferServerId": "server_id",
}


def resources_from_outputs(outputs: dict[str, str]) -> dict[str, str]:
    """Map template outputs to resource names; unknown outputs keep their output name."""
    return {OUTPUT_RESOURCES.get(k, k): v for k, v in outputs.items()}
