"""A deployed function as the local Lambda service runs it, and its sandbox's environment.

Kept apart from :mod:`ingest_local.deploy` (which imports moto) so that ``ingest invoke``
and the CLI stay quick to start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ingest.cli.context import FAKE_CREDENTIALS


@dataclass
class FunctionSpec:
    """A deployed function as the Lambda service sees it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int


#: passed through from the parent so Python and locale behave as in the caller's shell.
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


def sandbox_environment(
    spec: FunctionSpec,
    *,
    endpoint_url: str,
    region: str,
    code_root: Path,
    extra_pythonpath: list[Path] | None = None,
) -> dict[str, str]:
    """The environment a function's sandbox gets: its deployed variables plus the runtime's."""
    env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(code_root),
            "_HANDLER": spec.handler,
            # As under `sam local`: no X-Ray daemon here, so Powertools' tracer stays off.
            "AWS_SAM_LOCAL": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(str(p) for p in [code_root, *(extra_pythonpath or [])]),
        }
    )
    env.update(spec.environment)
    return env
