"""Cold import of each Lambda handler, beside a bare ``import boto3, aws_lambda_powertools``.

Each function's package is built by its own Makefile target (``make build-<Function>``, what ``sam
build`` calls), for the functions' Python 3.13, and imported with Python 3.13 (on the PATH or
installed by pyenv; without one, the packages are built with wheels for this interpreter and
imported with it). Each case runs in a new ``python -I -S -B`` with nothing on the path but that
package, the runtime's own packages (boto3 and what it needs, copied from this venv and compiled by
that Python, as the runtime ships them) and the standard library, with the function's Lambda
environment (``AWS_LAMBDA_FUNCTION_NAME`` set, so Powertools' Tracer is on as in Lambda). The child
times its own import (``perf_counter``; interpreter start-up, the same for every case, is left
out). Cases take turns in a rotated order, one warm-up round is dropped, the median of ``--runs``
counts; the ratio is each handler's median over the bare import's median in the same run.

Cases:

* **bare**: ``import boto3, aws_lambda_powertools`` (the processor's package on the path);
* **bare + Tracer()**: the same, then a Powertools ``Tracer()`` created as a handler does,
  which in Lambda imports the X-Ray SDK and patches botocore;
* one per function: ``import lambdas.<handler>``.

Two settings: **no .pyc** (the package as ``sam build`` makes it when ``python3.13`` is not
on the PATH: every cold start compiles what it imports, /var/task being read-only) and
**with .pyc** (``LAMBDA_PYC`` set to that Python: bytecode made by it, as the Makefile ships
when it finds one).

    .venv/bin/python bench/cold_import.py                   # --runs N (default 15)
    .venv/bin/python bench/cold_import.py --importtime ProcessorFunction
        # where one handler's import time goes beyond the bare import (python -X importtime)
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
BARE = "bare"
TRACED = "bare + Tracer()"
BARE_CODE = "import boto3, aws_lambda_powertools"
TRACED_CODE = BARE_CODE + "\naws_lambda_powertools.Tracer()"


def _child(code: str, paths: list[str]) -> None:
    """Runs in the new interpreter: time the import, print milliseconds."""
    sys.path[:0] = paths
    start = time.perf_counter()
    exec(code, {})
    sys.stdout.write(f"{(time.perf_counter() - start) * 1000:.3f}\n")


def _cases() -> dict[str, tuple[str, str]]:
    """case → (code, the function whose package and environment it runs with)."""
    cases = {BARE: (BARE_CODE, "ProcessorFunction"), TRACED: (TRACED_CODE, "ProcessorFunction")}
    for function, module in FUNCTIONS.items():
        cases[function] = (f"import {module}", function)
    return cases


def _env(function: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": "sftp-ingest",
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
        env=_env(function),
    )


def _measure(python: str, arts: dict[str, str], runtime: str, runs: int) -> dict[str, list[float]]:
    """Every case ``runs`` times, taking turns in a rotated order (one warm-up round)."""
    cases = _cases()
    names = list(cases)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(runs + 1):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            code, function = cases[name]
            ms = float(_run(python, code, [arts[function], runtime], function).stdout)
            if round_:
                times[name].append(ms)
    return times


def _importtime(python: str, arts: dict[str, str], runtime: str, function: str) -> None:
    """Where ``function``'s import goes beyond the bare import: the top modules by self time."""
    import re

    def parse(stderr: str) -> list[tuple[int, int, str]]:
        rows = []
        for line in stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if m:
                rows.append((int(m[1]), int(m[2]), m[4]))
        return rows

    paths = [arts[function], runtime]
    code = f"{BARE_CODE}\nimport {FUNCTIONS[function]}"
    rows = parse(_run(python, code, paths, function, "-X", "importtime").stderr)
    bare_rows = parse(_run(python, BARE_CODE, paths, function, "-X", "importtime").stderr)
    bare = {name for _, _, name in bare_rows}
    extra = [(s, c, n) for s, c, n in rows if n not in bare]
    by_package: dict[str, int] = {}
    for self_us, _, name in extra:
        by_package[name.split(".")[0]] = by_package.get(name.split(".")[0], 0) + self_us
    total = sum(s for s, _, _ in extra)
    print(f"{function}: {total / 1000:.0f} ms of imports beyond the bare import (one run)")
    print("  by top-level package (self time):")
    for package, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        print(f"    {package:<32}{us / 1000:>8.1f} ms")
    print("  modules with the most self time:")
    for self_us, _, name in sorted(extra, reverse=True)[:12]:
        print(f"    {name:<56}{self_us / 1000:>8.1f} ms")


def _sizes(arts: dict[str, str]) -> str:
    from pathlib import Path

    sizes = {
        f: sum(p.stat().st_size for p in Path(a).rglob("*") if p.is_file()) for f, a in arts.items()
    }
    return ", ".join(f"{f} {size / 1e6:.1f} MB" for f, size in sizes.items())


def main() -> None:
    import argparse
    import os
    import statistics
    import tempfile

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from support_lambda import lambda_python, runtime_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--importtime", choices=sorted(FUNCTIONS), help="profile one handler")
    parser.add_argument("--no-source", action="store_true", help="only the .pyc setting")
    args = parser.parse_args()
    from pathlib import Path

    python = lambda_python() or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        runtime = str(runtime_dir(Path(tmp, "runtime"), compiled_by=python))
        if args.importtime:
            _importtime(python, _build(tmp, python, pyc=True), runtime, args.importtime)
            return
        settings = {}
        if not args.no_source:
            settings["no .pyc"] = _build(tmp, python, pyc=False)
        settings["with .pyc"] = _build(tmp, python, pyc=True)
        version = _run(python, "import sys; print(sys.version.split()[0])", [], "x").stdout
        print(
            f"cold import of each handler from its own package, a new interpreter per run, "
            f"median of {args.runs} runs (python {version.split()[0]} at {python})"
        )
        for setting, arts in settings.items():
            print(f"package sizes, {setting}: {_sizes(arts)}")
        for setting, arts in settings.items():
            times = _measure(python, arts, runtime, args.runs)
            median = {case: statistics.median(values) for case, values in times.items()}
            bare = median[BARE]
            print(f"\n{setting}")
            print(f"  {'case':<26}{'median ms':>10}{'min':>8}{'max':>8}{'x bare':>8}  target")
            for case, values in times.items():
                ratio = median[case] / bare
                verdict = ""
                if case in CORE:
                    verdict = f"<= {TARGET}: " + ("met" if ratio <= TARGET else "MISSED")
                print(
                    f"  {case:<26}{median[case]:>10.1f}{min(values):>8.1f}{max(values):>8.1f}"
                    f"{ratio:>8.2f}  {verdict}"
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3:])
    else:
        main()
