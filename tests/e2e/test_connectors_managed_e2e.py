"""Scheduled retrieval on the local stack with ``ConnectorEngine=managed``: the retrieve
function calls the Transfer API that the stack serves on its AWS endpoint, the transfer runs
in the background, and its events reach the transfer-status function, as in AWS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stack_kit import RunningStack
from test_connectors_e2e import retrieve_on_the_stacks_schedule


def test_the_stacks_schedule_retrieves_with_the_managed_engine(
    start_local_stack: Callable[..., RunningStack], tmp_path: Path
) -> None:
    retrieve_on_the_stacks_schedule(start_local_stack, tmp_path, "managed")
