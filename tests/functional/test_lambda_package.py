"""What `sam build` packages: the Makefile target it calls (BuildMethod: makefile)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support_lambda import EMULATOR_PACKAGES, runtime_dir

ROOT = Path(__file__).resolve().parents[2]


def _runtime_dir(tmp_path: Path) -> Path:
    """A directory holding just the runtime's own packages (links into this venv)."""
    return runtime_dir(tmp_path / "lambda-runtime")


@pytest.mark.slow
def test_package_holds_only_runtime_code_and_every_handler_imports(tmp_path: Path) -> None:
    art = tmp_path / "artifacts"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    proc = subprocess.run(
        [
            "make",
            "-s",
            "build-FanoutFunction",
            f"ARTIFACTS_DIR={art}",
            f"PYTHON={sys.executable}",
            # wheels for this interpreter, so that this test can import the package
            f"LAMBDA_PYTHON={python}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    top = {p.name for p in art.iterdir()}
    assert {"ingest", "lambdas", "connectors", "aws_lambda_powertools", "msgspec"} <= top
    assert not {"pydantic", "yaml"} & top, "the functions read compiled feeds: no schema library"
    for forbidden in ("tests", "fixtures", "bench", "docs", "template.yaml", ".venv"):
        assert forbidden not in top, forbidden
    for emulator in EMULATOR_PACKAGES:
        assert emulator not in top, f"{emulator} is not runtime code"
    # bytecode only as the functions' Python makes it (here: this interpreter's), never a
    # stale copy from the working tree
    tag = sys.implementation.cache_tag
    pycs = list(art.rglob("*.pyc"))
    assert pycs, "the package ships bytecode"
    assert {p.name.split(".")[-2] for p in pycs} == {tag}, "only this Python's .pyc"
    assert (art / "ingest" / "usecases" / "__pycache__" / f"processor.{tag}.pyc").exists()

    # Import every handler with nothing on the path but the package, the runtime's own
    # packages and the standard library: no site-packages, so no moto or sam-translator.
    runtime = _runtime_dir(tmp_path)
    # The retrieve function's package is built from requirements-sftp.txt (the SFTP engine and
    # the jobs file's PyYAML and pydantic): test_sam_build imports it from its own artifact.
    not_core = {"__init__", "retrieve"}
    handlers = sorted(p.stem for p in (ROOT / "lambdas").glob("*.py") if p.stem not in not_core)
    code = (
        "import importlib, importlib.util, sys\n"
        f"sys.path[:0] = [{str(art)!r}, {str(runtime)!r}]\n"
        f"for name in {EMULATOR_PACKAGES!r}:\n"
        "    assert importlib.util.find_spec(name) is None, name + ' is importable'\n"
        f"for name in {handlers!r}:\n"
        "    module = importlib.import_module('lambdas.' + name)\n"
        f"    assert module.__file__.startswith({str(art)!r}), module.__file__\n"
        "import ingest\n"
        f"assert ingest.__file__.startswith({str(art)!r})\n"
        f"for name in {EMULATOR_PACKAGES!r}:\n"
        "    assert name not in sys.modules, name\n"
    )
    env = {"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
