"""What `sam build` packages: the Makefile target it calls (BuildMethod: makefile)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_package_holds_only_runtime_code_and_every_handler_imports(tmp_path: Path) -> None:
    art = tmp_path / "artifacts"
    proc = subprocess.run(
        ["make", "-s", "build-FanoutFunction", f"ARTIFACTS_DIR={art}", f"PYTHON={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    top = {p.name for p in art.iterdir()}
    assert {"ingest", "lambdas", "connectors", "aws_lambda_powertools", "yaml"} <= top
    for forbidden in ("tests", "fixtures", "bench", "docs", "template.yaml", ".venv"):
        assert forbidden not in top, forbidden
    assert not (art / "ingest" / "local").exists(), "the local stack is not runtime code"
    assert not list(art.rglob("__pycache__"))

    handlers = sorted(p.stem for p in (ROOT / "lambdas").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"sys.path.insert(0, {str(art)!r})\n"
        f"for name in {handlers!r}:\n"
        "    module = importlib.import_module('lambdas.' + name)\n"
        f"    assert module.__file__.startswith({str(art)!r}), module.__file__\n"
        "import ingest\n"
        f"assert ingest.__file__.startswith({str(art)!r})\n"
    )
    env = {"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
