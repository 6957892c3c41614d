"""The real SAM CLI on template.yaml: ``sam validate --lint``, ``sam build``, and what it built.

``make tools`` installs the SAM CLI into ``.tools/sam`` (its own venv: it pins its own boto3);
``make test`` runs it first. The build runs once for this module, into a temporary directory,
with no container: each function's ``build-<LogicalId>`` Makefile target installs manylinux
wheels for the functions' Python 3.13. Each built package is then checked: its size, that no
test, emulator or benchmark code is inside, and that its handler imports from it alone.

The import check runs with Python 3.13 when this machine has one (on the PATH, or installed by
pyenv: ``support_lambda.lambda_python``). Without it, the artifacts' version-specific extension
modules (pydantic-core, PyYAML's libyaml binding, wrapt, cffi) cannot load here: the check
then loads the same release of those few shared objects built for this Python, and still takes
every Python module from the artifact (``tests/support_lambda.py``; cryptography's binding is
abi3 and loads as built). ``LAMBDA_TEST_PYTHON`` chooses the interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support_lambda import (
    EMULATOR_PACKAGES,
    LAMBDA_PYTHON,
    RUNTIME_PACKAGES,
    SFTP_PACKAGES,
    abi_shims,
    lambda_python,
    probe,
    python_version,
    runtime_dir,
    tree_size,
)

from ingest.domain.feed_codec import encode_feeds
from ingest.domain.feeds import load_feeds
from ingest_local.deploy import load_template

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
#: the functions that must not carry the SFTP engine, and their bound (boto3 is the runtime's).
#: TransferStatusFunction is one: with ConnectorEngine=builtin it leaves a retrieval's
#: after-success action (remote move or delete) pending for RetrieveFunction's next run.
CORE_FUNCTIONS = (
    "FanoutFunction",
    "ProcessorFunction",
    "UploadEventsFunction",
    "TransferStatusFunction",
    "ExpectedFilesFunction",
    "OutcomesFunction",
    "WaitSweepFunction",
)
CORE_LIMIT_BYTES = 15_000_000
#: the connector function that runs SFTP: the core's packages and the SFTP engine
SFTP_FUNCTIONS = ("RetrieveFunction",)
#: distributions the SFTP functions have beyond the core's: the SFTP engine, and what reads the
#: jobs file (retrievals.yaml): PyYAML and pydantic
SFTP_DISTRIBUTIONS = (
    "asyncssh",
    "cryptography",
    "cffi",
    "pycparser",
    "pyyaml",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_inspection",
)
#: what no core function ships: the functions read compiled feeds (msgspec), not the YAML file
SCHEMA_PACKAGES = ("pydantic", "pydantic_core", "yaml")
#: never in a package: the emulator, the tests, the benchmarks, sample data, the dev tools
NOT_SHIPPED = (*EMULATOR_PACKAGES, "tests", "bench", "fixtures", "docs", ".venv", ".tools")
#: what the connector functions' builder imports when it first runs (lambdas/runtime.py)
CONNECTOR_BUILDER_MODULES = ["connectors.wiring", "connectors.service", "asyncssh"]
#: Powertools utilities no function imports, left out of every package (Makefile LAMBDA_PRUNE)
POWERTOOLS_UNUSED = (
    "event_handler",
    "utilities/idempotency",
    "utilities/parameters",
    "utilities/feature_flags",
    "utilities/auth_alpha",
    "utilities/circuit_breaker",
    "utilities/kafka",
    "utilities/data_masking",
    "utilities/streaming",
    "utilities/validation",
)
#: each core function's first event: it goes as far as its first AWS call (see _first_env)
FIRST_EVENTS: dict[str, dict[str, Any]] = {
    "FanoutFunction": json.loads((ROOT / "fixtures/events/s3-put.json").read_text()),
    "ProcessorFunction": json.loads((ROOT / "fixtures/events/sqs-chunk.json").read_text()),
    # a file entry turning PROCESSED, as the ledger's stream delivers it
    "OutcomesFunction": json.loads((ROOT / "fixtures/events/ledger-stream-final.json").read_text()),
    "UploadEventsFunction": json.loads(
        (ROOT / "fixtures/events/transfer-upload-failed.json").read_text()
    ),
    "TransferStatusFunction": json.loads(
        (ROOT / "fixtures/events/connector-retrieve-completed.json").read_text()
    ),
    "ExpectedFilesFunction": {
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "time": "2026-12-07T08:35:00Z",
        "detail": {},
    },
    "WaitSweepFunction": {
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "time": "2026-12-07T08:35:00Z",
        "detail": {},
    },
}
#: the feeds a first invocation reads: the expected-files check needs an expected: schedule
#: to go as far as AWS
FIRST_FEEDS = {"ExpectedFilesFunction": "feeds-expected.yaml"}
SAM_TIMEOUT = 240


def _sam(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    if not SAM.exists():
        pytest.fail(f"{SAM} is missing: run `make tools` (make test does it first)")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    return subprocess.run(
        [str(SAM), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=SAM_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``sam build`` once: {function: (artifact dir, handler)}."""
    build_dir = tmp_path_factory.mktemp("sam-build")
    # --build-in-source: make runs in the repository itself; without it SAM first copies the
    # whole CodeUri (".", .venv and .tools included) into a scratch directory per function.
    proc = _sam(
        "build",
        "--template-file",
        str(ROOT / "template.yaml"),
        "--build-dir",
        str(build_dir),
        "--build-in-source",
        "--no-cached",
        "--parallel",
    )
    assert proc.returncode == 0, f"sam build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    template = load_template(build_dir / "template.yaml")
    functions = {
        name: (build_dir / res["Properties"]["CodeUri"], res["Properties"]["Handler"])
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
    assert set(functions) == {*CORE_FUNCTIONS, *SFTP_FUNCTIONS}, sorted(functions)
    return {"functions": functions, "dir": build_dir}


def test_sam_validate_lint() -> None:
    proc = _sam("validate", "--lint", "--template-file", str(ROOT / "template.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is a valid SAM Template" in proc.stdout + proc.stderr


def _top_level(artifact: Path) -> set[str]:
    return {p.name for p in artifact.iterdir()}


def _dist_names(artifact: Path) -> set[str]:
    return {p.name.split("-")[0].lower() for p in artifact.glob("*.dist-info")}


def test_artifact_sizes_and_contents(built: dict[str, Any]) -> None:
    functions = built["functions"]
    sizes = {name: tree_size(art) for name, (art, _) in functions.items()}
    print("\nsam build artifact sizes (bytes):", sizes)
    for name, (art, _) in functions.items():
        top = _top_level(art)
        assert {"ingest", "connectors", "lambdas", "aws_lambda_powertools", "msgspec"} <= top
        assert "pysequoia" in top, f"{name} cannot decrypt PGP files"
        for forbidden in NOT_SHIPPED:
            assert forbidden not in top, f"{name} ships {forbidden}"
        assert not list(art.rglob("ingest_local")), f"{name} ships the emulator"
        for runtime in RUNTIME_PACKAGES:
            assert runtime not in top and f"{runtime}.py" not in top, f"{name} ships {runtime}"
        assert "template.yaml" not in top
    # the expected-files schedules are evaluated in their zones: the time zone database ships
    # with that function (zoneinfo falls back to it where the runtime has none)
    assert "tzdata" in _top_level(functions["ExpectedFilesFunction"][0])
    for name in CORE_FUNCTIONS:
        art = functions[name][0]
        assert not set(SFTP_PACKAGES) & _top_level(art), f"{name} ships the SFTP engine"
        assert not set(SCHEMA_PACKAGES) & _top_level(art), f"{name} ships pydantic or PyYAML"
        assert sizes[name] <= CORE_LIMIT_BYTES, (
            f"{name}: {sizes[name] / 1e6:.1f} MB > {CORE_LIMIT_BYTES / 1e6:.0f} MB"
        )
    # the connector functions hold exactly the core's files plus the SFTP distributions'
    core_art = functions[CORE_FUNCTIONS[0]][0]
    core_files = {p.relative_to(core_art) for p in core_art.rglob("*") if p.is_file()}
    for name in SFTP_FUNCTIONS:
        art = functions[name][0]
        assert set(SFTP_PACKAGES) <= _top_level(art), name
        assert _dist_names(art) - _dist_names(core_art) == set(SFTP_DISTRIBUTIONS), name
        files = {p.relative_to(art) for p in art.rglob("*") if p.is_file()}
        assert core_files <= files, f"{name} lacks {sorted(core_files - files)[:5]}"
        extra_tops = {f.parts[0] for f in files - core_files}
        allowed = set(SFTP_PACKAGES) | set(SCHEMA_PACKAGES)
        allowed |= {"cffi", "pycparser", "_cffi_backend", "_yaml", "annotated_types"}
        allowed |= {"typing_inspection"}
        strays = {t for t in extra_tops if t.split(".")[0] not in allowed and ".dist-info" not in t}
        assert not strays, f"{name} ships more than the SFTP engine: {strays}"


@pytest.fixture(scope="module")
def import_setup(built: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The interpreter to import with, the runtime's packages, and the ABI shims per function
    (none with the functions' own Python)."""
    base = tmp_path_factory.mktemp("lambda-import")
    python = lambda_python() or sys.executable
    shims: dict[str, dict[str, str]] = {name: {} for name in built["functions"]}
    if python_version(python) != LAMBDA_PYTHON:
        assert os.path.realpath(python) == os.path.realpath(sys.executable), (
            f"{python}: the shims are built for this interpreter only"
        )
        for name, (art, _) in built["functions"].items():
            shims[name] = abi_shims(art, base / "shims" / name)
    print(f"\nimporting the handlers with {python}")
    return {"python": python, "runtime": runtime_dir(base / "runtime"), "shims": shims}


@pytest.mark.parametrize("function", [*CORE_FUNCTIONS, *SFTP_FUNCTIONS])
def test_handler_imports_from_its_artifact_alone(
    function: str, built: dict[str, Any], import_setup: dict[str, Any]
) -> None:
    art, handler = built["functions"][function]
    module = handler.rsplit(".", 1)[0]
    report = probe(
        import_setup["python"],
        art,
        import_setup["runtime"],
        modules=[module],
        handler=handler,
        absent=(*SFTP_PACKAGES, *EMULATOR_PACKAGES),
        shims=import_setup["shims"][function],
    )
    assert report["files"][0].startswith(str(art)), report["files"]
    assert not report["strays"], report["strays"]
    # the handler's import graph never loads the SFTP engine, not even in the connector functions
    assert report["present"] == [], f"{handler} imports {report['present']}"
    assert report["origins"]["artifact"] > 50, report["origins"]
    if import_setup["shims"][function]:
        # only extension modules were taken from elsewhere, and they are the artifact's own
        assert set(report["shimmed"]) <= set(import_setup["shims"][function])


@pytest.mark.parametrize("function", SFTP_FUNCTIONS)
def test_connector_builder_imports_the_sftp_engine_from_the_artifact(
    function: str, built: dict[str, Any], import_setup: dict[str, Any]
) -> None:
    art, handler = built["functions"][function]
    report = probe(
        import_setup["python"],
        art,
        import_setup["runtime"],
        modules=[handler.rsplit(".", 1)[0], *CONNECTOR_BUILDER_MODULES],
        absent=EMULATOR_PACKAGES,
        shims=import_setup["shims"][function],
    )
    assert not report["strays"], report["strays"]
    assert all(f.startswith(str(art)) for f in report["files"]), report["files"]


@pytest.mark.parametrize("function", CORE_FUNCTIONS)
def test_core_artifacts_cannot_import_the_sftp_engine(
    function: str, built: dict[str, Any], import_setup: dict[str, Any]
) -> None:
    """The check above can fail: the same probe on a core artifact cannot load asyncssh."""
    art, _ = built["functions"][function]
    with pytest.raises(AssertionError, match="No module named 'asyncssh'"):
        probe(
            import_setup["python"],
            art,
            import_setup["runtime"],
            modules=["connectors.service"],
            shims=import_setup["shims"][function],
        )


TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def _first_env(function: str, art: Path, feeds: Path) -> dict[str, str]:
    """A Lambda environment for a first invocation: the runtime's variables (LAMBDA_TASK_ROOT:
    the X-Ray SDK's Lambda path, a trace header), the function's settings, feeds read from a
    file, and AWS at a local port where nothing listens (so the event stops at its first call)."""
    return {
        "LAMBDA_TASK_ROOT": str(art),
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_REGION": "us-east-1",
        "_X_AMZN_TRACE_ID": f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_ACCESS_KEY_ID": "probe",
        "AWS_SECRET_ACCESS_KEY": "probe",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": "sftp-ingest",
        "LANDING_BUCKET": "landing",
        "LEDGER_TABLE": "ledger",
        "RECORDS_TABLE": "records",
        "FEEDS_URI": str(feeds),
        "INGEST_QUEUE_URL": "http://127.0.0.1:9/123456789012/ingest",
        "CONNECTOR_ENGINE": "builtin",
    }


def _pyc(source: str) -> Path:
    """Where the functions' Python keeps a source file's bytecode (what the Makefile ships)."""
    path = Path(source)
    return path.parent / "__pycache__" / "{}.cpython-{}{}.pyc".format(path.stem, *LAMBDA_PYTHON)


@pytest.mark.parametrize("function", CORE_FUNCTIONS)
def test_first_invocation_runs_from_the_artifact_with_its_bytecode(
    function: str,
    built: dict[str, Any],
    import_setup: dict[str, Any],
    tmp_path: Path,
) -> None:
    """Each core handler's first invocation (cold-start build, feeds parsed, the event handled up
    to its first AWS call) loads nothing that the package left out (the unused Powertools
    utilities, the SFTP engine), and with the functions' Python on the build machine every
    module it loads from the package has the bytecode the Makefile compiled for it."""
    art, handler = built["functions"][function]
    feeds = tmp_path / "feeds.yaml"  # what the functions read is its compiled form, next to it
    compiled = encode_feeds(load_feeds(ROOT / "fixtures" / FIRST_FEEDS.get(function, "feeds.yaml")))
    (tmp_path / "feeds.json").write_bytes(compiled)
    for unused in POWERTOOLS_UNUSED:
        assert not (art / "aws_lambda_powertools" / unused).exists(), unused
    report = probe(
        import_setup["python"],
        art,
        import_setup["runtime"],
        modules=[handler.rsplit(".", 1)[0]],
        handler=handler,
        absent=(*SFTP_PACKAGES, *EMULATOR_PACKAGES),
        shims=import_setup["shims"][function],
        env=_first_env(function, art, feeds),
        invoke=FIRST_EVENTS[function],
    )
    assert not report["strays"], report["strays"]
    assert report["present"] == [], report["present"]
    # it got as far as AWS: the settings, the clients, the feeds and the event were all handled
    assert "Could not connect to the endpoint URL" in (report["invoke_error"] or ""), report[
        "invoke_error"
    ]
    loaded = report["artifact_files"]
    feeds_loaded = any(f.endswith("/ingest/domain/feed_codec.py") for f in loaded)
    # the ingestion functions decoded the compiled feeds; the transfer-status function never
    # loads them; and none loads the feeds file's schema (pydantic) or PyYAML: neither ships
    assert feeds_loaded == (function != "TransferStatusFunction"), function
    assert not any(f.endswith("/ingest/domain/feeds.py") for f in loaded), function
    if lambda_python() is not None:  # sam build compiled with it (Makefile LAMBDA_PYC)
        missing = [f for f in loaded if f.endswith(".py") and not _pyc(f).exists()]
        assert not missing, f"{function}: no bytecode for {missing[:10]} ({len(missing)})"
    else:
        assert not list(art.rglob("*.pyc")), "bytecode without the functions' Python"
