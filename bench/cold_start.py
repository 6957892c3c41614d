"""Cold start of the schema library: import + first validation of fixtures/feeds.yaml.

Compares, each in a new interpreter:

* **hand-written**: the validation the feeds file had before pydantic (``ingest/domain/feeds.py``
  at commit 6396805, read from git);
* **pydantic**: ``ingest.domain.feeds`` as it is now (pydantic v2);
* **msgspec**: the same schema in msgspec (``bench/cold_start_msgspec.py``);
* **baseline**: yaml and the feed types imported and the file read, nothing validated;
* **processor, hand-written** / **processor, pydantic**: ``import lambdas.processor``, its
  settings read from an environment and the feeds loaded, the whole cold start the schema
  library is part of: with ``ingest/domain/feeds.py`` and ``ingest/settings.py`` as they were at
  6396805 (hand-written), and as they are now (pydantic).

The code runs from the processor's Lambda artifact, as ``make build-ProcessorFunction`` builds it
(the wheels pip picks for the functions, msgspec's installed next to it the same way), with
``python -B -S``: nothing on the path but the artifact, the standard library and, for the function,
the runtime's boto3. Two settings: **as packaged** (the artifact has no .pyc, and Lambda's
/var/task is read-only, so each cold start compiles every module it imports from the package) and
**with .pyc** (the same artifact after ``compileall``). Each child times its own imports and first
load (``perf_counter``; interpreter start-up is the same for every case and left out); the cases
take turns, one warm-up round is dropped, and the median of ``--runs`` counts.

    .venv/bin/python bench/cold_start.py            # --runs N (default 15)
"""

from __future__ import annotations

import sys
import time

ROOT = __file__.rsplit("/bench/", 1)[0]
HAND_WRITTEN_COMMIT = "6396805"
CASES = (
    "baseline",
    "hand-written",
    "pydantic",
    "msgspec",
    "processor, hand-written",
    "processor, pydantic",
)
#: the files the hand-written processor takes from that commit
HAND_WRITTEN_FILES = ("ingest/domain/feeds.py", "ingest/settings.py")
#: the processor function's environment, as the template sets it
FUNCTION_ENV = {
    "LANDING_BUCKET": "landing",
    "LEDGER_TABLE": "ledger",
    "FEEDS_URI": "s3://landing/config/feeds.yaml",
    "RECORDS_TABLE": "records",
    "INGEST_QUEUE_URL": "http://localhost/queue",
    "RETRY_BACKOFF_SECONDS": "30",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "processor",
}


def _child(case: str, paths: list[str], feeds: str) -> None:
    """Runs in the new interpreter: time the imports and the first load, print ms and feeds."""
    sys.path[:0] = paths
    start = time.perf_counter()
    if case == "baseline":
        import yaml

        from ingest.domain import feed_types

        with open(feeds, encoding="utf-8") as file:
            yaml.safe_load(file.read())
        result: object = feed_types.__name__
    elif case == "hand-written":
        import handwritten_feeds  # type: ignore[import-not-found]

        result = handwritten_feeds.load_feeds(feeds).feeds
    elif case == "pydantic":
        from ingest.domain.feeds import load_feeds

        result = load_feeds(feeds).feeds
    elif case == "msgspec":
        import cold_start_msgspec

        result = cold_start_msgspec.load_feeds(feeds).feeds
    else:
        import os

        import lambdas.processor  # noqa: F401
        from ingest.domain.feeds import load_feeds
        from ingest.settings import ProcessorSettings

        ProcessorSettings.from_env(os.environ)
        result = load_feeds(feeds).feeds
        assert ("pydantic" in sys.modules) == (case == "processor, pydantic"), case
    elapsed_ms = (time.perf_counter() - start) * 1000
    sys.stdout.write(f"{elapsed_ms:.3f}\n{result!r}\n")


def _build(tmp: str) -> dict[str, list[str]]:
    """The artifact, msgspec beside it, the hand-written code, the runtime's boto3: the
    path each case runs with."""
    import os
    import shutil
    import subprocess
    from pathlib import Path

    art, extra, runtime, hand = (
        os.path.join(tmp, d) for d in ("artifact", "msgspec", "runtime", "hand-written")
    )
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    make_vars = [f"PYTHON={sys.executable}", f"LAMBDA_PYTHON={python}"]
    # the way the Makefile installs the functions' requirements
    wheels_for = ["--platform", "manylinux2014_x86_64", "--implementation", "cp"]
    wheels_for += ["--python-version", python, "--only-binary=:all:"]
    subprocess.run(
        ["make", "-s", "build-ProcessorFunction", f"ARTIFACTS_DIR={art}", *make_vars],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            extra,
            *wheels_for,
            "msgspec",
        ],
        check=True,
        capture_output=True,
    )
    # the hand-written processor: an ingest package ahead of the artifact's on the path
    shutil.copytree(os.path.join(art, "ingest"), os.path.join(hand, "ingest"))
    for name in HAND_WRITTEN_FILES:
        old = subprocess.run(
            ["git", "-C", ROOT, "show", f"{HAND_WRITTEN_COMMIT}:{name}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        Path(hand, name).write_text(old, encoding="utf-8")
    shutil.copy(
        os.path.join(hand, HAND_WRITTEN_FILES[0]), os.path.join(hand, "handwritten_feeds.py")
    )
    # copied, so that no .pyc of an earlier run in bench/ is used
    shutil.copy(os.path.join(ROOT, "bench", "cold_start_msgspec.py"), extra)
    _runtime_dir(runtime)
    paths = {case: [art] for case in CASES}
    paths["hand-written"] = [hand, art]
    paths["msgspec"] = [art, extra]
    paths["processor, hand-written"] = [hand, art, runtime]
    paths["processor, pydantic"] = [art, runtime]
    return paths


def _runtime_dir(runtime: str) -> None:
    """What the Lambda runtime brings itself, linked from this venv (as tests/functional does)."""
    import importlib.util
    from pathlib import Path

    Path(runtime).mkdir()
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"):
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        Path(runtime, source.name).symlink_to(source)


def _run(case: str, paths: list[str], feeds: str) -> tuple[float, str]:
    import subprocess

    env = {"PATH": "/usr/bin:/bin", **FUNCTION_ENV}
    out = subprocess.run(
        [sys.executable, "-B", "-S", __file__, "--child", case, feeds, *paths],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    ms, result = out.split("\n", 1)
    return float(ms), result


def _measure(paths: dict[str, list[str]], feeds: str, runs: int) -> dict[str, list[float]]:
    """Every case ``runs`` times, taking turns in a rotated order (one warm-up round)."""
    times: dict[str, list[float]] = {case: [] for case in CASES}
    results: dict[str, str] = {}
    for round_ in range(runs + 1):
        order = CASES[round_ % len(CASES) :] + CASES[: round_ % len(CASES)]
        for case in order:
            ms, result = _run(case, paths[case], feeds)
            results[case] = result.replace("handwritten_feeds.", "ingest.domain.feed_types.")
            if round_:
                times[case].append(ms)
    same = {results[case] for case in CASES[1:]}
    assert len(same) == 1, "the schemas do not load the same feeds"
    return times


def _versions(art: str) -> str:
    import os

    dists = [d.removesuffix(".dist-info").split("-") for d in os.listdir(art)]
    found = {parts[0]: parts[1] for parts in dists if len(parts) == 2}
    return ", ".join(f"{name} {found[name]}" for name in ("pydantic", "msgspec") if name in found)


def main() -> None:
    import argparse
    import compileall
    import os
    import statistics
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--feeds", default=os.path.join(ROOT, "fixtures", "feeds.yaml"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = _build(tmp)
        versions = _versions(paths["msgspec"][0]) + ", " + _versions(paths["msgspec"][1])
        settings = {"as packaged (no .pyc)": _measure(paths, args.feeds, args.runs)}
        for directory in {*paths["msgspec"][:2], paths["hand-written"][0]}:
            compileall.compile_dir(directory, quiet=1)
        settings["with .pyc"] = _measure(paths, args.feeds, args.runs)
    print(
        f"cold start: import + first load of {os.path.relpath(args.feeds, ROOT)}, a new "
        f"interpreter per run, median of {args.runs} runs (python {sys.version.split()[0]}; "
        f"{versions})"
    )
    for setting, times in settings.items():
        median = {case: statistics.median(values) for case, values in times.items()}
        hand, base = median["hand-written"], median["baseline"]
        print(f"\n{setting}")
        print(f"  {'case':<25}{'median ms':>10}{'min':>8}{'max':>8}{'x hand':>8}{'- baseline':>12}")
        for case in CASES:
            values = times[case]
            print(
                f"  {case:<25}{median[case]:>10.1f}{min(values):>8.1f}{max(values):>8.1f}"
                f"{median[case] / hand:>8.2f}{median[case] - base:>12.1f}"
            )
        lib = {case: median[case] - base for case in ("hand-written", "pydantic", "msgspec")}
        before, after = median["processor, hand-written"], median["processor, pydantic"]
        print(
            f"  over the baseline: pydantic {lib['pydantic']:.0f} ms, msgspec "
            f"{lib['msgspec']:.0f} ms, hand-written {lib['hand-written']:.0f} ms; processor "
            f"cold start {before:.0f} -> {after:.0f} ms ({after / before:.2f} x)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[4:], sys.argv[3])
    else:
        main()
