"""``ingest connectors schedule FILE``: the last step of onboarding a connector.

The retrievals file is checked (every problem at once, each naming the job and the field),
each job's connector must exist, and the file is installed where the RetrieveFunction reads
it: ``s3://<landing bucket>/config/retrievals.yaml``, the template's ``RETRIEVALS_URI``. The
function's ``RetrieveSchedule`` then runs every job; ``--check`` installs nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from connectors import config
from connectors.jobfile import load_jobs
from connectors.usecases import RETRIEVALS_KEY
from ingest.adapters.sdk import translated
from ingest.cli.context import add_target_arguments, resolve_deployment
from ingest.cli.output import print_table
from ingest.errors import ConfigError


def register(sub: Any) -> None:
    """Add ``schedule`` to ``ingest connectors``."""
    p = sub.add_parser(
        "schedule",
        help="check a retrievals.yaml and install it for the scheduled RetrieveFunction",
    )
    p.add_argument("file", type=Path, help="the jobs file (format: docs/connectors.md)")
    p.add_argument("--check", action="store_true", help="only check it; install nothing")
    add_target_arguments(p)
    p.set_defaults(func=cmd_schedule)


def cmd_schedule(args: argparse.Namespace) -> int:
    """Check the jobs and their connectors, then put the file where the function reads it."""
    try:
        text = args.file.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror}") from None
    jobs = load_jobs(text, str(args.file))
    deployment = resolve_deployment(args)
    transfer = deployment.aws.client("transfer")
    for connector_id in sorted({job.connector_id for job in jobs}):
        config.describe_connector(transfer, connector_id)  # ConnectorNotFoundError: exit 2
    print_table(
        [
            [
                job.name,
                job.connector_id,
                f"{job.remote_directory.rstrip('/')}/{job.pattern}",
                job.destination,
                f"move to {job.move_to}" if job.move_to else job.after_success,
            ]
            for job in jobs
        ],
        ["JOB", "CONNECTOR", "REMOTE FILES", "DESTINATION", "AFTER SUCCESS"],
        empty="no jobs: scheduled runs will do nothing",
    )
    bucket = deployment.resource("bucket")
    where = f"s3://{bucket}/{RETRIEVALS_KEY}"
    if args.check:
        print(f"checked; not installed (the RetrieveFunction reads {where})")
        return 0
    with translated("s3", "PutObject", where):
        deployment.aws.client("s3").put_object(
            Bucket=bucket, Key=RETRIEVALS_KEY, Body=text.encode()
        )
    print(f"installed {where}: the RetrieveFunction runs these jobs on its RetrieveSchedule")
    return 0
