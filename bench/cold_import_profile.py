"""Where a handler's cold import goes, beside ``bench/cold_import.py`` (which times it).

    .venv/bin/python bench/cold_import_profile.py --importtime ProcessorFunction
        # the modules it loads beyond the bare import, by self time (python -X importtime)
    .venv/bin/python bench/cold_import_profile.py --instructions
        # each core handler's and its floor's CPU instructions (valgrind), with .pyc
    .venv/bin/python bench/cold_import_profile.py --stack-chunks
        # each core handler's and its floor's frame-stack chunks mapped (strace), with .pyc

``--instructions`` counts what the time measures without the machine's noise: the instructions
each import executes (``valgrind --tool=callgrind``; an empty interpreter's are subtracted), one
run each, deterministic. It leaves out what instructions do not show (waiting for the disk, page
faults, cache misses): a guide to where the time goes, not the figure the targets are judged by
(``apt-get install -y valgrind``).

``--stack-chunks`` counts what the instructions leave out and what once made a handler's import
slower than its instructions said: the 16 KiB chunks of the interpreter's frame stack each import
maps (``strace``: anonymous ``mmap`` calls of 16 KiB). Python 3.13.0 unmaps a chunk as soon as
the stack drops back below it (CPython gh-142183, fixed in later 3.13 releases), so code that
recurses across a chunk's edge again and again (urllib3 compiling its URL regular expressions,
imported deep inside a handler's own imports) maps, faults in and unmaps one chunk per crossing:
thousands of system calls and page faults, 20-40 ms of a cold start on this machine. The count
is near zero for each floor, and should be for each handler (``lambdas/__init__.py`` imports boto3
first for that reason; ``apt-get install -y strace``).

The packages, the interpreter, the floors and each case's environment are
``bench/cold_import.py``'s.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import cold_import

if TYPE_CHECKING:
    import subprocess


def importtime(python: str, arts: dict[str, str], runtime: str, function: str) -> None:
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
    code = f"{cold_import.BARE_CODE}\nimport {cold_import.FUNCTIONS[function]}"
    rows = parse(cold_import._run(python, code, paths, function, "-X", "importtime").stderr)
    bare_rows = parse(
        cold_import._run(python, cold_import.BARE_CODE, paths, function, "-X", "importtime").stderr
    )
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


#: the floors, by name, as ``bench/cold_import.py`` times them
FLOOR_CODES = {
    cold_import.FLOOR: cold_import.FLOOR_CODE,
    cold_import.FLOOR_BATCH: cold_import.FLOOR_BATCH_CODE,
    cold_import.FLOOR_EVENTS: cold_import.FLOOR_EVENTS_CODE,
}


def _run_under(
    tool: list[str], python: str, paths: list[str], code: str, function: str
) -> subprocess.CompletedProcess[str]:
    """One case's child (``bench/cold_import.py --child``) run under ``tool`` (valgrind, strace)."""
    import subprocess

    return subprocess.run(
        [*tool, python, "-I", "-S", "-B", cold_import.__file__, "--child", code, *paths],
        capture_output=True,
        text=True,
        env=cold_import._env(function, paths[0]),
        check=True,
    )


def instructions(python: str, arts: dict[str, str], runtime: str) -> None:
    """Each core handler's import and its floor's, in CPU instructions (valgrind)."""
    import re

    def count(code: str, function: str) -> int:
        valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        proc = _run_under(valgrind, python, [arts[function], runtime], code, function)
        found = re.search(r"Collected : (\d+)", proc.stderr)
        if found is None:
            raise SystemExit(f"valgrind printed no instruction count: {proc.stderr[-500:]}")
        return int(found[1])

    empty = count("pass", "ProcessorFunction")
    floors = {name: count(code, "ProcessorFunction") - empty for name, code in FLOOR_CODES.items()}
    print("CPU instructions of each import (valgrind, with .pyc, one run each), in millions")
    print(f"  {'case':<36}{'M instr':>10}{'x floor':>8}  <= floor / {cold_import.FLOOR_FACTOR}")
    for name, value in floors.items():
        print(f"  {name:<36}{value / 1e6:>10.0f}")
    for function in cold_import.CORE:
        value = count(f"import {cold_import.FUNCTIONS[function]}", function) - empty
        floor = floors[cold_import.FLOORS[function]]
        verdict = "met" if value <= floor / cold_import.FLOOR_FACTOR else "MISSED"
        print(f"  {function:<36}{value / 1e6:>10.0f}{value / floor:>8.2f}  {verdict}")


#: how Python 3.13 maps a chunk of its frame stack (_PY_DATA_STACK_CHUNK_SIZE, 16 KiB)
STACK_CHUNK_MMAP = "mmap(NULL, 16384, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)"


def stack_chunks(python: str, arts: dict[str, str], runtime: str) -> None:
    """The frame-stack chunks each core handler's import and its floor's map (strace)."""
    import os
    import tempfile

    def count(code: str, function: str) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            trace = os.path.join(tmp, "trace")
            strace = ["strace", "-f", "-e", "trace=mmap", "-o", trace]
            _run_under(strace, python, [arts[function], runtime], code, function)
            with open(trace) as lines:
                return sum(STACK_CHUNK_MMAP in line for line in lines)

    empty = count("pass", "ProcessorFunction")
    print("frame-stack chunks (16 KiB) mapped by each import (strace, with .pyc, one run each)")
    print(f"  {'case':<36}{'chunks':>10}")
    for name, code in FLOOR_CODES.items():
        print(f"  {name:<36}{count(code, 'ProcessorFunction') - empty:>10}")
    for function in cold_import.CORE:
        chunks = count(f"import {cold_import.FUNCTIONS[function]}", function) - empty
        print(f"  {function:<36}{chunks:>10}")


def main() -> None:
    import argparse
    import os
    import tempfile
    from pathlib import Path

    sys.path.insert(0, os.path.join(cold_import.ROOT, "tests"))
    from support_lambda import lambda_python, runtime_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--importtime", choices=sorted(cold_import.FUNCTIONS), help="one handler")
    mode.add_argument("--instructions", action="store_true", help="CPU instructions (valgrind)")
    mode.add_argument(
        "--stack-chunks", action="store_true", help="frame-stack chunks mapped (strace)"
    )
    args = parser.parse_args()
    python = lambda_python() or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        runtime = str(runtime_dir(Path(tmp, "runtime"), compiled_by=python))
        arts = cold_import._build(tmp, python, pyc=True)
        if args.importtime:
            importtime(python, arts, runtime, args.importtime)
        elif args.instructions:
            instructions(python, arts, runtime)
        else:
            stack_chunks(python, arts, runtime)


if __name__ == "__main__":
    main()
