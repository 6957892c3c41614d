"""``ingest demo``: a scripted end-to-end run on the local stack that exits when done.

It starts the stack with the demo partner, uploads every file under ``fixtures/files/`` over
SFTP with a real client (asyncssh, host key checked against the gateway's), waits until the
ledger shows each one in a terminal state, and prints what happened to each.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import IO, Any

import asyncssh

from ingest.adapters.ledger import Ledger
from ingest.adapters.partners import PARTNER_PREFIX
from ingest.cli.output import print_table
from ingest.domain.files import FileEntry, FileStatus
from ingest.shared.polling import PollTimeoutError, poll_until
from ingest_local.stack import LocalStack, StackOptions, repo_file

TERMINAL = frozenset(
    {
        FileStatus.PROCESSED,
        FileStatus.PROCESSED_WITH_REJECTS,
        FileStatus.FAILED,
        FileStatus.UNMATCHED,
        FileStatus.PARTIAL,
        FileStatus.IGNORED,
        FileStatus.EXPANDED,
        FileStatus.DECRYPTED,
    }
)


def demo_files(root: Path) -> list[tuple[Path, str]]:
    """(local file, remote path under the partner's root) for every file under ``root``."""
    return [(p, p.relative_to(root).as_posix()) for p in sorted(root.rglob("*")) if p.is_file()]


async def sftp_upload(
    host: str,
    port: int,
    *,
    username: str,
    private_key: Path,
    known_hosts: Path,
    files: list[tuple[Path, str]],
) -> None:
    """Upload ``files`` over one SFTP session; the server's host key must be in ``known_hosts``."""
    async with (
        asyncssh.connect(
            host,
            port,
            username=username,
            client_keys=[str(private_key)],
            known_hosts=str(known_hosts),
            agent_path=None,
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        for local, remote in files:
            parent = remote.rpartition("/")[0]
            if parent:
                await sftp.makedirs(parent, exist_ok=True)
            await sftp.put(str(local), remote)


def wait_terminal(
    ledger: Ledger, keys: list[str], *, timeout: float, poll: float = 0.5
) -> dict[str, FileEntry | None]:
    """The ledger entries of ``keys`` once all are terminal, or as they are at ``timeout``."""
    latest: dict[str, FileEntry | None] = {}

    def all_terminal() -> dict[str, FileEntry | None] | None:
        nonlocal latest
        latest = {key: ledger.get_file(key) for key in keys}
        done = all(e is not None and e.status in TERMINAL for e in latest.values())
        return latest if done else None

    try:
        return poll_until(all_terminal, timeout=timeout, interval=poll, what="the demo files")
    except PollTimeoutError:
        return latest


def outcome_table(entries: dict[str, FileEntry | None], out: IO[str]) -> None:
    """A table of each file's outcome: key, status, rows ok, rows rejected, reason."""
    rows = [
        (key, "(not in ledger)", None, None, None)
        if e is None
        else (key, e.status, e.rows_ok, e.rows_rejected, (e.reason or "")[:60])
        for key, e in entries.items()
    ]
    print_table(rows, ("KEY", "STATUS", "ROWS OK", "REJECTED", "REASON"), out=out)


def run_demo(options: StackOptions, *, files: Path | None, timeout: float, out: IO[str]) -> int:
    """Run the demo; 0 when every file reached a terminal status, 1 otherwise."""
    files_root = files or repo_file("fixtures/files")
    uploads = demo_files(files_root)
    if not uploads:
        print(f"no files under {files_root}", file=out)
        return 1
    with tempfile.TemporaryDirectory(prefix="ingest-demo-") as tmp:
        if options.state_dir == Path(".state") or not options.state_dir:
            options.state_dir = Path(tmp)  # never clobber a running `make run` stack's state
        options.demo_partner = True
        with LocalStack(options) as stack:
            return _run(stack, uploads, timeout, out)


def _run(stack: LocalStack, uploads: list[tuple[Path, str]], timeout: float, out: IO[str]) -> int:
    endpoints: Any = stack.endpoints
    assert endpoints is not None and endpoints.sftp is not None and stack.demo is not None
    print(
        f"local stack up: SFTP {endpoints.sftp.host}:{endpoints.sftp.port}, "
        f"uploading {len(uploads)} files as partner {stack.demo.name!r} …",
        file=out,
        flush=True,
    )
    asyncio.run(
        sftp_upload(
            endpoints.sftp.host,
            endpoints.sftp.port,
            username=stack.demo.name,
            private_key=stack.demo.private_key,
            known_hosts=stack.state_dir / "known_hosts",
            files=uploads,
        )
    )
    assert stack.aws is not None
    ledger = Ledger(stack.aws.client("dynamodb"), endpoints.resources["ledger_table"])
    keys = [f"{PARTNER_PREFIX}/{stack.demo.name}/{remote}" for _, remote in uploads]
    entries = wait_terminal(ledger, keys, timeout=timeout)
    outcome_table(entries, out)
    out.flush()
    pending = [k for k, e in entries.items() if e is None or e.status not in TERMINAL]
    if pending:
        print(f"not finished after {timeout:.0f}s: {', '.join(pending)}", file=out)
        return 1
    return 0
