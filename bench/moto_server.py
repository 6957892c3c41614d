"""A moto server (``moto.server.ThreadedMotoServer`` on 127.0.0.1, port 0) in its own process.

Benchmarks run the server in a child process so that moto's CPU work does not share a GIL
with the code being measured: in AWS, S3 and DynamoDB do not run on the function's CPU either.
The child exits when its stdin closes, so it never outlives the benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_CHILD = """
import logging, sys
from moto.server import ThreadedMotoServer
# One log line per request would cost the server CPU in every phase; errors still show.
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes our stdin
server.stop()
"""


@dataclass(frozen=True)
class MotoProcess:
    """A running moto server: its endpoint URL and process id."""

    endpoint_url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (Linux /proc; 0.0 elsewhere)."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        # Fields after the command name; utime and stime are fields 14 and 15 of stat(5).
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float | None:
        """The server's peak resident set size (``VmHWM``), if /proc is available."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None


@contextmanager
def moto_server(log_path: Path) -> Iterator[MotoProcess]:
    """Start moto in a child process; yields once it listens, stops it on exit."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            line = proc.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"moto server did not start (see {log_path}): {line!r}")
            yield MotoProcess(endpoint_url=f"http://127.0.0.1:{int(line.split()[1])}", pid=proc.pid)
        finally:
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
