"""The ``ingest`` command line. Each area registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ingest.errors import IngestError

#: modules with a ``register(subparsers)`` function, in help order.
COMMAND_MODULES = (
    "ingest.cli.status",
    "ingest.cli.core",
    "ingest.cli.dlq",
    "ingest.cli.partners",
    "ingest.cli.expected",
    "ingest_local.cli",
    "connectors.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ingest", description="sftp-ingest: SFTP-to-S3 ingestion into DynamoDB"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # an area that is not installed in this build
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ingest`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IngestError as exc:
        print(f"ingest: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
