"""One function's sandbox: a subprocess that imports the handler once and serves invocations.

Like a Lambda execution environment, each function gets its own process with exactly its
deployed environment variables, a cold start (module-level code runs once), and a fresh
process after a crash or a timeout. The parent talks to it over JSON lines on stdin and a
private copy of stdout; everything the handler prints goes to stderr, which the parent sends
to the function's log file.

Run as ``python -m ingest_local.worker HANDLER FUNCTION_NAME TIMEOUT MEMORY``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ingest.adapters.aws import DEFAULT_REGION
from ingest.errors import IngestError, RetryableError
from ingest_local.lambda_service import LambdaContext, load_handler


class FunctionError(IngestError):
    """The handler raised: ``error_type`` and ``message`` are what Lambda would report."""

    def __init__(self, function: str, error_type: str, message: str, trace: str = "") -> None:
        self.function = function
        self.error_type = error_type
        self.error_message = message
        self.trace = trace
        super().__init__(f"{function}: {error_type}: {message}")


class FunctionTimeoutError(RetryableError):
    """An invocation ran past the function's timeout; its sandbox was killed."""


class FunctionCrashError(RetryableError):
    """The function's sandbox process died during an invocation."""


def _serve(handler_name: str, function_name: str, timeout: float, memory: int) -> int:
    # Keep a private channel for replies, then point fd 1 at stderr so that whatever the
    # handler prints (Powertools logs to stdout) cannot corrupt the protocol.
    # Ctrl-C reaches the whole process group; the parent decides when sandboxes stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    init_error: dict[str, Any] | None = None
    try:
        handler = load_handler(handler_name)
    except Exception as exc:  # an init failure is reported on every invocation, as Lambda does
        traceback.print_exc()
        init_error = {
            "ok": False,
            "error_type": "Runtime.ImportModuleError",
            "message": f"{type(exc).__name__}: {exc}",
            "trace": traceback.format_exc(),
        }
    region = os.environ.get("AWS_REGION", DEFAULT_REGION)
    for line in sys.stdin:
        request = json.loads(line)
        if init_error is not None:
            replies.write(json.dumps(init_error) + "\n")
            continue
        context = LambdaContext(
            function_name=function_name,
            timeout_seconds=timeout,
            memory_limit_in_mb=memory,
            region=region,
            aws_request_id=request["request_id"],
        )
        # The runtime's own log lines, as in CloudWatch: START / END / REPORT per request.
        print(f"START RequestId: {context.aws_request_id} Version: $LATEST", file=sys.stderr)
        started = time.monotonic()
        text = _invoke(handler, request["event"], context)
        elapsed = (time.monotonic() - started) * 1000
        print(f"END RequestId: {context.aws_request_id}", file=sys.stderr)
        print(
            f"REPORT RequestId: {context.aws_request_id}\tDuration: {elapsed:.2f} ms\t"
            f"Memory Size: {memory} MB",
            file=sys.stderr,
            flush=True,
        )
        replies.write(text + "\n")
    return 0


def _invoke(handler: Any, event: Any, context: LambdaContext) -> str:
    """One invocation → the JSON reply line (the result, or the error as Lambda reports it)."""
    try:
        return json.dumps({"ok": True, "result": handler(event, context)})
    except Exception as exc:  # reported to the caller, as Lambda reports function errors
        traceback.print_exc()
        return json.dumps(
            {
                "ok": False,
                "error_type": type(exc).__name__,
                "message": str(exc),
                "trace": traceback.format_exc(),
            }
        )


class FunctionWorker:
    """The parent side: one sandbox process for one function, restarted when it dies."""

    def __init__(
        self,
        *,
        function_name: str,
        handler: str,
        environment: Mapping[str, str],
        timeout: float,
        memory: int = 1024,
        log_path: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.function_name = function_name
        self.handler = handler
        self.environment = dict(environment)
        self.timeout = timeout
        self.memory = memory
        self.log_path = log_path
        self.cwd = cwd
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.cold_starts = 0

    def _start(self) -> subprocess.Popen[str]:
        if self._log is None and self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ingest_local.worker",
                self.handler,
                self.function_name,
                str(self.timeout),
                str(self.memory),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else None,
            env=self.environment,
            cwd=self.cwd,
            text=True,
            encoding="utf-8",
        )
        self.cold_starts += 1
        return self._proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()

    def warm(self) -> None:
        """Start the sandbox now so that its imports (the init phase) overlap other work."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()

    def invoke(self, event: dict[str, Any], request_id: str) -> Any:
        """Run the handler on ``event`` in the sandbox and return its JSON result.

        Raises :class:`FunctionError` if the handler raised, :class:`FunctionTimeoutError`
        if it ran past the timeout and :class:`FunctionCrashError` if the process died.
        """
        with self._lock:
            if self._closing.is_set():
                raise FunctionCrashError(f"{self.function_name}: the sandbox is shutting down")
            proc = self._proc if self._proc and self._proc.poll() is None else self._start()
            assert proc.stdin is not None and proc.stdout is not None
            reply: list[str] = []
            stdout = proc.stdout

            def read() -> None:
                reply.append(stdout.readline())

            try:
                proc.stdin.write(json.dumps({"event": event, "request_id": request_id}) + "\n")
                proc.stdin.flush()
            except BrokenPipeError:
                self._kill()
                raise FunctionCrashError(f"{self.function_name}: sandbox exited") from None
            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            # The first invocation includes the cold start (imports), as Lambda's init does.
            reader.join(self.timeout + 1.0)
            if reader.is_alive():
                self._kill()
                reader.join()
                raise FunctionTimeoutError(
                    f"{self.function_name}: task timed out after {self.timeout:.2f} seconds"
                )
            if not reply or not reply[0]:
                code = proc.wait()
                self._kill()
                if self._closing.is_set():
                    raise FunctionCrashError(
                        f"{self.function_name}: stopped by shutdown during the invocation"
                    )
                raise FunctionCrashError(
                    f"{self.function_name}: sandbox exited with code {code} during the invocation"
                )
        data = json.loads(reply[0])
        if data["ok"]:
            return data["result"]
        raise FunctionError(self.function_name, data["error_type"], data["message"], data["trace"])

    def close(self) -> None:
        """Stop the sandbox (closing stdin lets it exit on its own first).

        An invocation under way holds the lock for as long as it runs (up to the function's
        timeout): its process is killed first, without the lock, so shutdown never waits for
        a hung invocation.
        """
        self._closing.set()
        if self._lock.acquire(blocking=False):
            self._lock.release()
        elif (busy := self._proc) is not None:
            with contextlib.suppress(OSError):
                busy.kill()  # the invocation sees its sandbox die and returns at once
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None and proc.stdin is not None:
                proc.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            self._kill()
            if self._log is not None:
                self._log.close()
                self._log = None


def main(argv: list[str]) -> int:
    """Entry point of the sandbox process."""
    handler, function_name, timeout, memory = argv
    return _serve(handler, function_name, float(timeout), int(memory))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
