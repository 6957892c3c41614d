"""The CLI's transfer progress off a terminal: one line per finished file, never wrapped."""

from __future__ import annotations

import io

from ingest.cli.output import TransferProgress


def test_a_finished_file_is_one_line_however_long_its_path() -> None:
    path = "/" + "/".join(["a-rather-long-directory-name"] * 8) + "/orders.csv"
    assert len(path) > 200  # far past rich's 80 columns when not on a terminal
    out = io.StringIO()
    with TransferProgress([path], out) as progress:
        progress.update(path, 5, 10)
        progress.update(path, 10, 10)
        progress.update(path, 10, 10)  # a repeated final update prints nothing more
    assert out.getvalue().splitlines() == [f"{path}  10 bytes  done"]
