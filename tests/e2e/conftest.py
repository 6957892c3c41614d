"""The whole local stack as a user runs it: ``ingest up`` in a subprocess, real SFTP clients.

Fixtures for every area's end-to-end tests:

* ``local_stack`` (session-scoped): one ``ingest up --demo-partner`` shared by the session.
  Use your own partner names and file names so tests don't see each other's files.
* ``start_local_stack``: a factory for a private stack (``start_local_stack(state_dir, *args)``),
  stopped at the end of the test, for tests that restart or need their own state.

Both give a :class:`stack_kit.RunningStack`: ``client(service)``, ``ingest(*args)`` (the CLI
against this stack), ``sftp_batch(commands)`` (OpenSSH ``sftp -b``, strict host key checking),
``status()``, ``wait_for_file(key)``, ``stop()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from stack_kit import RunningStack, launch


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One ``ingest up --demo-partner`` for the whole session. Its scheduled retrievals run
    once a day, not every 5 minutes: the connector test invokes the retrieval itself, and a
    scheduled run firing in between (once the session is 5 minutes old) would take its file
    first."""
    stack = launch(
        tmp_path_factory.mktemp("local-stack"),
        "--demo-partner",
        "--parameter",
        "RetrieveSchedule=rate(1 day)",
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def start_local_stack() -> Iterator[Callable[..., RunningStack]]:
    """A factory for private stacks; each is stopped when the test ends."""
    started: list[RunningStack] = []

    def start(state_dir: Path, *args: str) -> RunningStack:
        stack = launch(state_dir, *args)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.stop()
