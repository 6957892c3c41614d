"""Bytecode for what a function's cold start loads, and nothing else (Makefile ``lambda-package``).

Run by the functions' own Python (``LAMBDA_PYC``) on a built package that still holds the
runtime's packages (boto3 and what it needs; the Makefile removes them afterwards):

    python3.13 -I -S -B tools/lambda_bytecode.py ARTIFACTS_DIR

It imports every handler module of ``template.yaml`` that the package can import, in a Lambda
environment (``LAMBDA_TASK_ROOT`` set, so the X-Ray SDK takes its Lambda path), runs each one's
cold-start build (``wiring()``: settings, clients, ports; no AWS call), and prints the source
files of the modules that were loaded from the package, plus every module of our own packages
(``ingest``, ``connectors``, ``lambdas``, whose lazy imports run later in an invocation). The
Makefile compiles exactly those (``compileall -i -``); the rest of the package (Powertools'
event handler, openpyxl until an xlsx feed is read, ...) ships as source only: importable, just
compiled in memory when something does. Bytecode for everything would not fit the core
packages' 15 MB bound (docs/benchmarks.md, "Packages and cold imports (issue 11)").
Standard library only: nothing but the package is on the path.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path

#: template.yaml's handler modules (a package that cannot import one, e.g. the core packages
#: and lambdas.retrieve's SFTP engine, skips it)
#: and the processor first: Powertools' batch utility imports its pydantic parser models when
#: pydantic is already loaded, which in the processor's own cold start it is not
HANDLER_MODULES = (
    "lambdas.processor",
    "lambdas.fanout",
    "lambdas.upload_events",
    "lambdas.transfer_status",
    "lambdas.wait_sweep",
    "lambdas.outcomes",
    "lambdas.retrieve",
)
#: what RetrieveFunction's build imports at its first invocation (it also calls AWS: not run)
CONNECTOR_BUILDER = ("connectors.wiring",)
OUR_PACKAGES = ("ingest", "connectors", "lambdas")
#: a Lambda-like environment: names and values only, nothing is called
ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "build",
    "AWS_SECRET_ACCESS_KEY": "build",
    "AWS_LAMBDA_FUNCTION_NAME": "build",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "POWERTOOLS_TRACE_DISABLED": "false",
    "LANDING_BUCKET": "build",
    "LEDGER_TABLE": "build",
    "RECORDS_TABLE": "build",
    "FEEDS_URI": "s3://build/config/feeds.yaml",
    "INGEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/build",
}


def loaded_sources(artifact: Path) -> list[Path]:
    """The package's source files of every module loaded so far."""
    root = str(artifact.resolve()) + os.sep
    files = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and file.endswith(".py") and os.path.realpath(file).startswith(root):
            files.add(Path(os.path.realpath(file)))
    return sorted(files)


def main(artifact: Path) -> None:
    os.environ.update(ENV, LAMBDA_TASK_ROOT=str(artifact.resolve()))
    sys.path.insert(0, str(artifact))
    for name in HANDLER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if name != "lambdas.retrieve":
            module.wiring()
    for name in CONNECTOR_BUILDER:
        with contextlib.suppress(ImportError):  # a core package: no SFTP engine
            importlib.import_module(name)
    files = set(loaded_sources(artifact))
    for package in OUR_PACKAGES:
        files.update(p.resolve() for p in (artifact / package).rglob("*.py"))
    sys.stdout.write("".join(f"{f}\n" for f in sorted(files)))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
