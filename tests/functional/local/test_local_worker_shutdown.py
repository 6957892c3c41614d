"""Stopping a function's sandbox never waits out an invocation that is still running (Ctrl-C
on ``ingest up`` used to wait for a hung invocation's whole timeout)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from support_aws import wait_for

from ingest_local.worker import FunctionCrashError, FunctionWorker

HERE = Path(__file__).parent


@pytest.mark.timeout(60)
def test_close_stops_a_running_invocation_at_once(tmp_path: Path) -> None:
    worker = FunctionWorker(
        function_name="Sleepy",
        handler="lsvc_handlers.sleepy",
        environment=dict(os.environ),
        timeout=600,
        log_path=tmp_path / "sleepy.log",
        cwd=HERE,
    )
    outcome: list[BaseException | object] = []

    def invoke() -> None:
        try:
            outcome.append(worker.invoke({"seconds": 600}, "req-1"))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=invoke, daemon=True)
    thread.start()
    log = tmp_path / "sleepy.log"
    wait_for(
        lambda: log.exists() and "START RequestId: req-1" in log.read_text(),
        timeout=30,
        what="the invocation to start",
    )

    closed = threading.Thread(target=worker.close, daemon=True)
    closed.start()
    closed.join(20)  # the invocation would hold the worker for 600 s
    assert not closed.is_alive(), "close() waited for the running invocation"
    thread.join(20)
    assert len(outcome) == 1
    assert isinstance(outcome[0], FunctionCrashError)
    assert "shutdown" in str(outcome[0])
    with pytest.raises(FunctionCrashError, match="shutting down"):
        worker.invoke({"seconds": 1}, "req-2")
