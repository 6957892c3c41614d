"""Cold import of each Lambda handler, beside a bare ``import boto3, aws_lambda_powertools``
and beside the floor of what issue 11 requires every handler to load.

Each function's package is built by its own Makefile target (``make build-<Function>``, what ``sam
build`` calls), for the functions' Python 3.13, and imported with Python 3.13 (on the PATH or
installed by pyenv; without one, the packages are built with wheels for this interpreter and
imported with it). Each case runs in a new ``python -I -S -B`` with nothing on the path but that
package, the runtime's own packages (boto3 and what it needs, copied from this venv and compiled by
that Python, as the runtime ships them) and the standard library, with the function's Lambda
environment: what the Lambda runtime sets (``AWS_LAMBDA_FUNCTION_NAME``, so Powertools' Tracer is
on; ``LAMBDA_TASK_ROOT``, without which the X-Ray SDK takes its non-Lambda path and its centralized
sampler creates two botocore clients at import; ``_X_AMZN_TRACE_ID``, ...) and the template's
settings. The child times its own import (``perf_counter``; interpreter start-up, the same for
every case, is left out), and counts its own CPU time for it (``process_time``: user + sys of
the importing process, which time spent waiting for the CPU while other work runs does not
inflate; a second table). Cases take turns in a rotated order, one warm-up round is dropped, the
median of ``--runs`` counts; the ratios are each case's median over the bare import's and over its
floor's medians in the same run.

Cases:

* **bare**: ``import boto3, aws_lambda_powertools`` (the processor's package on the path);
* **bare + Tracer()**: the same, then a Powertools ``Tracer(patch_modules=("botocore",))``
  created as a handler does, which in Lambda imports the X-Ray SDK and patches botocore;
* **floor**: the bare import, then one Powertools ``Tracer`` (botocore patched), ``Logger`` and
  ``Metrics``: what issue 11 part 3 requires of every handler (X-Ray through the handlers, JSON
  logs with Powertools, Powertools EMF metrics), nothing of our own choosing (pydantic, PyYAML,
  the core); **floor + batch**: also Powertools' ``BatchProcessor`` (DESIGN.md requires it of SQS
  handlers): the processor's floor; **floor + data classes**: the floor and Powertools' event
  data classes (DESIGN.md's house style: events are read through them), the floor of fanout
  and upload-events, which parse S3, SQS, SNS and Transfer events with them (the batch
  utility imports them too). A core handler meets the project's rule for a target below the
  machine's floor when its median is within 0.9 x of its floor (``handler <= floor / 0.9``);
* one per function: ``import lambdas.<handler>``;
* with .pyc, one per core function: **+1st call**, the import and then its first invocation (the
  cold-start build: settings, clients, feeds; then one event: fanout's and the processor's sample
  events of ``fixtures/events``, an upload-failed and a connector file event) against a moto
  server (``bench/moto_server.py``, its own process) holding the bucket, feeds, tables and queue.
  Its outcome is printed (``first call: ok``); the time is the cold start's init plus first
  invocation, which no deferral of imports shortens.

Two settings: **no .pyc** (``LAMBDA_PYC=``: the package as ``sam build`` makes it on a machine
without Python 3.13: every cold start compiles what it imports, /var/task being read-only) and
**with .pyc** (``LAMBDA_PYC`` set to that Python: the bytecode the Makefile ships, for the modules
a cold start loads: ``tools/lambda_bytecode.py``).

    .venv/bin/python bench/cold_import.py                   # --runs N (default 15)
    .venv/bin/python bench/cold_import_profile.py ...     # where the time goes (its docstring)
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

ROOT = __file__.rsplit("/bench/", 1)[0]
#: function → its handler module (template.yaml's Handler strings)
FUNCTIONS = {
    "FanoutFunction": "lambdas.fanout",
    "ProcessorFunction": "lambdas.processor",
    "UploadEventsFunction": "lambdas.upload_events",
    "TransferStatusFunction": "lambdas.transfer_status",
    "RetrieveFunction": "lambdas.retrieve",
}
CORE = ("FanoutFunction", "ProcessorFunction", "UploadEventsFunction", "TransferStatusFunction")
TARGET = 1.3
#: the project's rule for a target below the machine's floor: within 0.9 x of that floor
FLOOR_FACTOR = 0.9
BARE = "bare"
TRACED = "bare + Tracer()"
FLOOR = "floor"
FLOOR_BATCH = "floor + batch"
FLOOR_EVENTS = "floor + data classes"
BARE_CODE = "import boto3, aws_lambda_powertools"
TRACED_CODE = BARE_CODE + "\naws_lambda_powertools.Tracer(patch_modules=('botocore',))"
#: What issue 11 requires every handler to load, whoever writes it: X-Ray through the handler
#: with Powertools' Tracer (botocore patched, so SDK calls are subsegments: part 3), Powertools'
#: JSON Logger (part 3: "every function logs JSON ... with Powertools") and its EMF Metrics
#: (part 3: "Powertools EMF metrics from every function"), one of each, created at import as
#: Powertools documents. Not in it: our own choices (pydantic, PyYAML, the ingest core).
FLOOR_CODE = (
    BARE_CODE + "\nfrom aws_lambda_powertools import Logger, Metrics, Tracer"
    "\nTracer(patch_modules=('botocore',)); Logger(); Metrics()"
)
#: the processor's floor: also Powertools' batch utility, which DESIGN.md's house style requires
#: of SQS handlers (BatchProcessor / process_partial_response)
FLOOR_BATCH_CODE = (
    FLOOR_CODE + "\nfrom aws_lambda_powertools.utilities.batch import BatchProcessor, EventType,"
    " process_partial_response\nBatchProcessor(event_type=EventType.SQS)"
)
#: the floor of the handlers that read their events through Powertools' event data classes
#: (DESIGN.md's house style, 7: "Powertools for ... event data classes"): fanout's S3/SQS/SNS
#: events, upload-events' Transfer events; the batch utility imports them too
FLOOR_EVENTS_CODE = FLOOR_CODE + "\nimport aws_lambda_powertools.utilities.data_classes"
#: the floor each core handler is held to
FLOORS = {
    "FanoutFunction": FLOOR_EVENTS,
    "ProcessorFunction": FLOOR_BATCH,
    "UploadEventsFunction": FLOOR_EVENTS,
    "TransferStatusFunction": FLOOR,
}
FIRST = " +1st call"


def _child(code: str, paths: list[str]) -> None:
    """Runs in the new interpreter: time the import, print its wall-clock and CPU milliseconds."""
    sys.path[:0] = paths
    start, cpu = time.perf_counter(), time.process_time()
    exec(code, {})
    wall_ms, cpu_ms = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
    sys.stdout.write(f"{wall_ms:.3f} {cpu_ms:.3f}\n")


#: the first invocation: import, then one event (a file in the child's events dir) through the
#: handler against the benchmark's moto server; the outcome goes to stderr, not into the time
FIRST_CODE = """import {module}
import json, os, sys
event = json.load(open(os.path.join(os.environ["BENCH_EVENTS"], "{function}.json")))
class Context:
    function_name = "{function}"; function_version = "$LATEST"; memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:{function}"
    aws_request_id = "00000000-0000-0000-0000-000000000001"
    def get_remaining_time_in_millis(self): return 60000
try:
    {module}.handler(event, Context())
    sys.stderr.write("OUTCOME ok\\n")
except Exception as exc:
    sys.stderr.write(f"OUTCOME {{type(exc).__name__}}\\n")
"""


def _cases(first: bool) -> dict[str, tuple[str, str]]:
    """case → (code, the function whose package and environment it runs with)."""
    cases = {
        BARE: (BARE_CODE, "ProcessorFunction"),
        TRACED: (TRACED_CODE, "ProcessorFunction"),
        FLOOR: (FLOOR_CODE, "ProcessorFunction"),
        FLOOR_BATCH: (FLOOR_BATCH_CODE, "ProcessorFunction"),
        FLOOR_EVENTS: (FLOOR_EVENTS_CODE, "ProcessorFunction"),
    }
    for function, module in FUNCTIONS.items():
        cases[function] = (f"import {module}", function)
    if first:
        for function in CORE:
            code = FIRST_CODE.format(module=FUNCTIONS[function], function=function)
            cases[function + FIRST] = (code, function)
    return cases


TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
#: set by main() when the first-invocation cases run: the moto endpoint and the events
AWS_ENV: dict[str, str] = {}


def _env(function: str, art: str = "") -> dict[str, str]:
    """The function's Lambda environment: what the runtime sets (LAMBDA_TASK_ROOT among it: the
    X-Ray SDK takes its Lambda path only when it is set, with no sampling clients), the
    template's settings, and the benchmark's AWS (moto) when there is one."""
    return {
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": art or "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": f"{FUNCTIONS.get(function, 'x')}.handler",
        "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1",
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": "sftp-ingest",
        "CONNECTOR_ENGINE": "builtin",
        **AWS_ENV,
    }


def _build(tmp: str, python: str, pyc: bool) -> dict[str, str]:
    """Each function's package, built by its Makefile target for ``python``."""
    import os
    import subprocess

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from support_lambda import python_version

    version = "{}.{}".format(*python_version(python))
    arts = {}
    for function in FUNCTIONS:
        art = os.path.join(tmp, "pyc" if pyc else "source", function)
        make = ["make", "-s", f"build-{function}", f"ARTIFACTS_DIR={art}"]
        make += [f"PYTHON={sys.executable}", f"LAMBDA_PYTHON={version}"]
        make += [f"LAMBDA_PYC={python if pyc else ''}"]
        subprocess.run(make, cwd=ROOT, check=True, capture_output=True)
        arts[function] = art
    return arts


def _run(
    python: str, code: str, paths: list[str], function: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    import subprocess

    return subprocess.run(
        [python, "-I", "-S", "-B", *flags, __file__, "--child", code, *paths],
        check=True,
        capture_output=True,
        text=True,
        env=_env(function, paths[0] if paths else ""),
    )


def _measure(
    python: str, arts: dict[str, str], runtime: str, runs: int, first: bool
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, set[str]]]:
    """Every case ``runs`` times, taking turns in a rotated order (one warm-up round): the wall
    and the CPU times, and the outcomes of the first-invocation cases."""
    cases = _cases(first)
    names = list(cases)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    outcomes: dict[str, set[str]] = {}
    for round_ in range(runs + 1):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            code, function = cases[name]
            proc = _run(python, code, [arts[function], runtime], function)
            for line in proc.stderr.splitlines():
                if line.startswith("OUTCOME "):
                    outcomes.setdefault(name, set()).add(line.split()[1])
            if round_:
                wall_ms, cpu_ms = proc.stdout.splitlines()[-1].split()
                times[name].append(float(wall_ms))
                cpu[name].append(float(cpu_ms))
    return times, cpu, outcomes


def _aws(endpoint: str, events_dir: str) -> dict[str, str]:
    """The pipeline's resources in moto, and each core function's first event; the variables
    the children need (the template's, pointed at moto)."""
    import json
    from pathlib import Path

    import boto3

    from ingest.adapters.feeds_publisher import publish_feeds
    from ingest_local.tables import create_pk_sk_table

    root = Path(ROOT)
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "LANDING_BUCKET": "sftp-ingest-landing-123456789012",
        "LEDGER_TABLE": "ledger",
        "RECORDS_TABLE": "records",
        "FEEDS_URI": "s3://sftp-ingest-landing-123456789012/config/feeds.yaml",
    }
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    kw |= {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    s3, ddb, sqs = (boto3.client(name, **kw) for name in ("s3", "dynamodb", "sqs"))
    bucket = env["LANDING_BUCKET"]
    s3.create_bucket(Bucket=bucket)
    publish_feeds(s3, env["FEEDS_URI"], (root / "fixtures/feeds.yaml").read_text())
    key = "inbound/demo/orders/orders-2026-11-01.csv"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=(root / "fixtures/files/orders/orders-2026-11-01.csv").read_bytes(),
    )
    for table in ("ledger", "records"):
        create_pk_sk_table(ddb, table)
    env["INGEST_QUEUE_URL"] = sqs.create_queue(QueueName="ingest")["QueueUrl"]
    events = {
        "FanoutFunction": json.loads((root / "fixtures/events/s3-put.json").read_text()),
        "ProcessorFunction": json.loads((root / "fixtures/events/sqs-chunk.json").read_text()),
        "UploadEventsFunction": json.loads(
            (root / "fixtures/events/transfer-upload-failed.json").read_text()
        ),
        "TransferStatusFunction": json.loads(
            (root / "fixtures/events/connector-retrieve-completed.json").read_text()
        ),
    }
    for function, event in events.items():
        Path(events_dir, f"{function}.json").write_text(json.dumps(event))
    env["BENCH_EVENTS"] = events_dir
    return env


def _sizes(arts: dict[str, str]) -> str:
    from pathlib import Path

    sizes = {
        f: sum(p.stat().st_size for p in Path(a).rglob("*") if p.is_file()) for f, a in arts.items()
    }
    return ", ".join(f"{f} {size / 1e6:.1f} MB" for f, size in sizes.items())


def main() -> None:
    import argparse
    import os
    import tempfile

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from support_lambda import lambda_python, runtime_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-source", action="store_true", help="only the .pyc setting")
    args = parser.parse_args()
    from pathlib import Path

    python = lambda_python() or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        runtime = str(runtime_dir(Path(tmp, "runtime"), compiled_by=python))
        settings = {}
        if not args.no_source:
            settings["no .pyc"] = _build(tmp, python, pyc=False)
        settings["with .pyc"] = _build(tmp, python, pyc=True)
        version = _run(python, "import sys; print(sys.version.split()[0])", [], "x").stdout
        print(
            f"cold import of each handler from its own package, a new interpreter per run, "
            f"median of {args.runs} runs (python {version.split()[0]})"
        )
        for setting, arts in settings.items():
            print(f"package sizes, {setting}: {_sizes(arts)}")
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        from moto_server import moto_server

        with moto_server(Path(tmp, "moto.log")) as moto:
            events = Path(tmp, "events")
            events.mkdir()
            AWS_ENV.update(_aws(moto.endpoint_url, str(events)))
            for setting, arts in settings.items():
                first = setting == "with .pyc"
                times, cpu, outcomes = _measure(python, arts, runtime, args.runs, first)
                _report(setting, times, outcomes)
                _report(f"{setting}, CPU time (the importing process's user + sys)", cpu, outcomes)


def _report(setting: str, times: dict[str, list[float]], outcomes: dict[str, set[str]]) -> None:
    """Medians, ratios to the bare import and to each core handler's floor, verdicts."""
    import statistics

    median = {case: statistics.median(values) for case, values in times.items()}
    bare = median[BARE]
    print(f"\n{setting}")
    header = f"  {'case':<36}{'median ms':>10}{'min':>8}{'max':>8}{'x bare':>8}{'x floor':>8}"
    print(header + "  targets")
    for case, values in times.items():
        function = case.removesuffix(FIRST)
        floor = median[FLOORS[function]] if function in FLOORS else None
        vs_floor = f"{median[case] / floor:>8.2f}" if floor else " " * 8
        verdict = ""
        if case in CORE and floor:
            ratio, limit = median[case] / bare, floor / FLOOR_FACTOR
            verdict = f"<= {TARGET} x bare: " + ("met" if ratio <= TARGET else "MISSED")
            verdict += f"; <= {FLOOR} / {FLOOR_FACTOR} ({FLOORS[function]}): "
            verdict += "met" if median[case] <= limit else "MISSED"
        elif case in outcomes:
            verdict = "first call: " + ", ".join(sorted(outcomes[case]))
        print(
            f"  {case:<36}{median[case]:>10.1f}{min(values):>8.1f}{max(values):>8.1f}"
            f"{median[case] / bare:>8.2f}{vs_floor}  {verdict}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3:])
    else:
        main()
