"""``ingest up`` without the ``[local]`` extra: one line that names the extra, no traceback."""

from __future__ import annotations

import subprocess
import sys

#: Make the extra's packages unimportable in the child, as if it had never been installed.
BLOCK = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("moto", "samtranslator", "cronsim"):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, Missing())
import importlib.util
_find = importlib.util.find_spec
def find_spec(name, package=None):
    if name.split(".")[0] in ("moto", "samtranslator", "cronsim"):
        return None
    return _find(name, package)
importlib.util.find_spec = find_spec
from ingest.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_up_without_the_local_extra_names_the_extra(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK, "up", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "ingest: error: the local stack needs moto, samtranslator, cronsim: "
        "pip install 'sftp-ingest[local]'"
    ]
    # the core commands still work without it
    help_text = subprocess.run(
        [sys.executable, "-c", BLOCK, "status", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert help_text.returncode == 0, help_text.stderr
