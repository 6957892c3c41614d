"""Importing a function's built package the way Lambda does: the package, the runtime's own
packages, the standard library, and nothing else.

Used by the package tests (``tests/functional/test_lambda_package.py``,
``tests/functional/test_sam_build.py``) and by ``bench/cold_import.py``.

The functions run on Python 3.13 and ``sam build`` installs wheels for it. When this machine
has no Python 3.13, an artifact's version-specific extension modules (their file names carry
``cpython-313``) cannot load here: :func:`abi_shims` installs the *same release* of their
distributions for this interpreter and the probe loads only those shared objects from there;
every Python module still comes from the artifact, and the probe reports which ones were
shimmed. Run as a script (``python -I -S -B support_lambda.py PROBE_JSON``) it is the probe:
standard library only, so that it can run with nothing else on the path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

#: What the Lambda Python runtime brings itself (everything else must be in the package).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
#: Dev-only packages of the emulator and the tests: never in a package, never importable.
EMULATOR_PACKAGES = ("moto", "samtranslator", "cronsim", "ingest_local")
#: The SFTP engine and what it brings: only the connector functions ship them.
SFTP_PACKAGES = ("asyncssh", "cryptography")

_TAGGED_EXTENSION = re.compile(r"^(?P<stem>[^.]+)\.cpython-(?P<ver>\d+)[^.]*\.so$")


#: The functions' Python (template.yaml's Runtime).
LAMBDA_PYTHON = (3, 13)


def lambda_python() -> str | None:
    """An interpreter of the functions' Python on this machine, if there is one.

    ``LAMBDA_TEST_PYTHON`` chooses one (any version: another one makes the probe use
    :func:`abi_shims`); else ``python3.13`` on the PATH, else one that pyenv installed (its
    shims only answer for the selected versions).
    """
    chosen = os.environ.get("LAMBDA_TEST_PYTHON")
    if chosen:
        return chosen
    name = "python{}.{}".format(*LAMBDA_PYTHON)
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(name), *sorted(map(str, root.glob(f"versions/*/bin/{name}")))]
    for candidate in filter(None, candidates):
        proc = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0 and proc.stdout.strip() == str(LAMBDA_PYTHON):
            return candidate
    return None


def python_version(python: str) -> tuple[int, int]:
    """(major, minor) of an interpreter."""
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1])


def runtime_dir(where: Path, *, compiled_by: str | None = None) -> Path:
    """A directory holding just the runtime's own packages: links into this venv, or, with
    ``compiled_by``, copies with bytecode made by that Python (as the Lambda runtime has)."""
    where.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        target = where / source.name
        if target.exists():
            continue
        if compiled_by is None:
            target.symlink_to(source)
        elif source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    if compiled_by is not None:
        subprocess.run([compiled_by, "-m", "compileall", "-q", "-j", "0", str(where)], check=True)
    return where


def tree_size(root: Path) -> int:
    """Bytes of every file under ``root`` (what the function's package unzips to)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def foreign_extensions(artifact: Path) -> dict[str, Path]:
    """The artifact's extension modules built for another CPython than this one: {module: file}."""
    own = f"{sys.version_info.major}{sys.version_info.minor}"
    found = {}
    for path in artifact.rglob("*.so"):
        match = _TAGGED_EXTENSION.match(path.name)
        if match and match["ver"] != own:
            parts = path.relative_to(artifact).parent.parts
            found[".".join((*parts, match["stem"]))] = path
    return found


def _distribution_of(artifact: Path, file: Path) -> tuple[str, str]:
    """(name, version) of the distribution whose RECORD lists ``file``."""
    rel = file.relative_to(artifact).as_posix()
    for record in artifact.glob("*.dist-info/RECORD"):
        if any(line.split(",", 1)[0] == rel for line in record.read_text().splitlines()):
            fields = dict(
                line.split(": ", 1)
                for line in (record.parent / "METADATA").read_text().splitlines()
                if ": " in line
            )
            return fields["Name"], fields["Version"]
    raise AssertionError(f"no distribution in {artifact} lists {rel}")


def abi_shims(artifact: Path, dest: Path) -> dict[str, str]:
    """For each foreign extension module of the artifact, the same module of the same release
    of its distribution, installed for this interpreter under ``dest``: {module: file}."""
    foreign = foreign_extensions(artifact)
    if not foreign:
        return {}
    dists = sorted({_distribution_of(artifact, f) for f in foreign.values()})
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
        + ["--only-binary=:all:", "--target", str(dest)]
        + [f"{name}=={version}" for name, version in dists],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"pip could not fetch {dists} for this Python: {proc.stderr}"
    shims = {}
    for module in foreign:
        *package, stem = module.split(".")
        candidates = [
            dest.joinpath(*package, stem + suffix)
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
        ]
        found = [c for c in candidates if c.exists()]
        assert found, f"{module}: no build for this Python in {dists}"
        shims[module] = str(found[0])
    return shims


def probe(
    python: str,
    artifact: Path,
    runtime: Path,
    *,
    modules: list[str],
    handler: str | None = None,
    absent: tuple[str, ...] = (),
    shims: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    invoke: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Import ``modules`` in a new ``python -I -S -B`` with nothing on the path but the artifact,
    the runtime's packages and the standard library; the probe's report (see :func:`_main`).

    ``invoke``: then call ``handler`` once with this event and a Lambda-like context (its first
    invocation: the cold-start build, then the event); the report's ``invoke_error`` is what it
    raised, if anything.
    """
    config = {
        "paths": [str(artifact), str(runtime)],
        "modules": modules,
        "handler": handler,
        "invoke": invoke,
        "absent": list(absent),
        "unimportable": list(EMULATOR_PACKAGES),
        "shims": shims or {},
    }
    proc = subprocess.run(
        [python, "-I", "-S", "-B", __file__, json.dumps(config)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", **(env or {})},
        check=False,
    )
    assert proc.returncode == 0, f"importing {modules} from {artifact} failed:\n{proc.stderr}"
    report: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return report


class _ShimFinder(importlib.abc.MetaPathFinder):
    """Loads the named extension modules from their files for this interpreter."""

    def __init__(self, shims: dict[str, str]) -> None:
        self.shims = shims

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.shims.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, file)
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


class _Context:
    """What Lambda's context object offers a handler (Powertools reads these)."""

    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "probe")
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    aws_request_id = "00000000-0000-0000-0000-000000000001"
    log_group_name = f"/aws/lambda/{function_name}"
    log_stream_name = "probe"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _main(config: dict[str, Any]) -> None:
    """The probe: import, then report where every loaded module came from."""
    paths = [os.path.realpath(p) for p in config["paths"]]
    sys.path[:0] = config["paths"]
    sys.meta_path.insert(0, _ShimFinder(config["shims"]))
    for name in config["unimportable"]:
        assert importlib.util.find_spec(name) is None, f"{name} is importable"
    loaded = [importlib.import_module(m) for m in config["modules"]]
    invoke_error = None
    if config["handler"]:
        module_name, attr = config["handler"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), attr)
        assert callable(handler), config["handler"]
        if config.get("invoke") is not None:
            try:
                handler(config["invoke"], _Context())
            except Exception as exc:  # reported to the test, which judges it
                invoke_error = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    stdlib = {os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")}
    shim_files = set(config["shims"].values())
    origins: dict[str, int] = {"artifact": 0, "runtime": 0, "stdlib": 0, "shim": 0}
    strays = []
    for name, module in sorted(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name in ("__main__", "__mp_main__"):  # this probe
            continue
        real = os.path.realpath(file)
        if file in shim_files:
            origins["shim"] += 1
        elif real.startswith(paths[0] + os.sep):
            origins["artifact"] += 1
        elif real.startswith(paths[1] + os.sep) or file.startswith(config["paths"][1] + os.sep):
            origins["runtime"] += 1
        elif any(real.startswith(s + os.sep) for s in stdlib) and "site-packages" not in real:
            origins["stdlib"] += 1
        else:
            strays.append(f"{name}: {file}")
    report = {
        "origins": origins,
        "strays": strays,
        "present": sorted(n for n in config["absent"] if n in sys.modules),
        "files": [m.__file__ for m in loaded],
        "shimmed": sorted(n for n in config["shims"] if n in sys.modules),
        "artifact_files": sorted(
            os.path.realpath(m.__file__)
            for m in list(sys.modules.values())
            if getattr(m, "__file__", None)
            and os.path.realpath(m.__file__).startswith(paths[0] + os.sep)
        ),
        "invoke_error": invoke_error,
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
