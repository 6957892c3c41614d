"""How the CLI shows things to people: rich tables and progress bars (``--json`` output is
plain JSON and never goes through here)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import IO, Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Table

#: the width of "no limit": a table piped elsewhere keeps each row on one line
_UNBOUNDED = 100_000


def print_table(
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str],
    *,
    empty: str = "nothing yet",
    out: IO[str] | None = None,
) -> None:
    """A table of ``rows`` under ``columns`` (``None`` shows as blank); ``empty`` if none.

    On a terminal it fits the terminal's width; piped into a file or another program, cells
    are never wrapped or cut (one line per row, for grep and the like).
    """
    console = Console(file=out, highlight=False)
    if not console.is_terminal:
        console = Console(file=out, highlight=False, width=_UNBOUNDED)
    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    count = 0
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
        count += 1
    if count:
        console.print(table)
    else:
        console.print(empty)


class TransferProgress:
    """A progress bar per file on a terminal; elsewhere one line per finished file.

    ``update(path, done, total)`` may be called from any thread (the transfer engine's).
    """

    def __init__(self, paths: Sequence[str], out: TextIO, *, enabled: bool = True) -> None:
        self._console = Console(file=out, highlight=False)
        self._enabled = enabled
        self._live = enabled and self._console.is_terminal
        self._lock = threading.Lock()
        self._finished: set[str] = set()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(binary_units=True),
            console=self._console,
            disable=not self._live,
        )
        self._tasks: dict[str, TaskID] = {
            path: self._progress.add_task(path[-40:], total=None) for path in paths
        }

    def __enter__(self) -> TransferProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, path: str, done: int, total: int) -> None:
        """``done`` of ``total`` bytes of ``path`` have moved."""
        if not self._enabled:
            return
        with self._lock:
            self._progress.update(self._tasks[path], completed=done, total=total)
            if not self._live and done >= total and path not in self._finished:
                self._finished.add(path)
                # one line per file, never wrapped: operators and scripts grep these
                self._console.print(f"{path}  {done:,} bytes  done", soft_wrap=True)
