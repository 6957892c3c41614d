"""Local-stack commands: ``ingest up``, ``ingest demo``, ``ingest invoke``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from ingest.cli.endpoints import (
    DEFAULT_STATE_DIR,
    ENV_STATE_DIR,
    Endpoints,
    default_state_dir,
)
from ingest.errors import ConfigError
from ingest_local.invoke import invoke_function
from ingest_local.worker import FunctionError

#: what the local stack runs on: the packages of the ``[local]`` extra
LOCAL_EXTRA = ("moto", "samtranslator", "cronsim")


def require_local_extra() -> None:
    """A one-line error naming the extra when the local stack's packages are missing."""
    missing = [name for name in LOCAL_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"the local stack needs {', '.join(missing)}: pip install 'sftp-ingest[local]'"
        )


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"host keys, partners, logs and endpoints.json (default: ${ENV_STATE_DIR} "
        f"or ./{DEFAULT_STATE_DIR})",
    )
    parser.add_argument("--sftp-port", type=int, default=0, help="SFTP port (default: a free one)")
    parser.add_argument("--aws-port", type=int, default=0, help="moto port (default: a free one)")
    parser.add_argument(
        "--feeds",
        type=Path,
        default=None,
        help="feeds file to install (default: fixtures/feeds.yaml)",
    )
    parser.add_argument("--template", type=Path, default=None, help="default: ./template.yaml")
    parser.add_argument(
        "--parameter",
        dest="parameters",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter override (repeatable)",
    )


def register(subparsers: Any) -> None:
    """Add the local-stack commands to the ``ingest`` parser."""
    up = subparsers.add_parser("up", help="run the whole pipeline on loopback until Ctrl-C")
    _add_stack_arguments(up)
    up.add_argument(
        "--demo-partner",
        action="store_true",
        help="register partner 'demo' with a key pair generated into the state dir (test-only)",
    )
    up.set_defaults(func=cmd_up)

    demo = subparsers.add_parser(
        "demo", help="start the stack, upload fixtures/files over SFTP, print each file's outcome"
    )
    _add_stack_arguments(demo)
    demo.add_argument("--files", type=Path, default=None, help="default: fixtures/files")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait (180)")
    demo.set_defaults(func=cmd_demo)

    invoke = subparsers.add_parser(
        "invoke", help="run one function of the local stack once, in-process (like sam local)"
    )
    invoke.add_argument("function", help="the function's logical id, e.g. FanoutFunction")
    invoke.add_argument(
        "-e", "--event", type=Path, required=True, help="event JSON file ('-' = stdin)"
    )
    invoke.add_argument(
        "--state-dir", type=Path, default=None, help="the running stack's state dir"
    )
    invoke.set_defaults(func=cmd_invoke)


# --- ingest up ---------------------------------------------------------------------------------


def _options(args: argparse.Namespace, *, demo_partner: bool) -> Any:
    require_local_extra()
    from ingest_local.stack import StackOptions  # noqa: PLC0415 (moto: slow import)

    opts = StackOptions(state_dir=args.state_dir or default_state_dir(), demo_partner=demo_partner)
    if args.template is not None:
        opts.template = args.template
    if args.feeds is not None:
        opts.feeds = args.feeds
    opts.sftp_port, opts.aws_port = args.sftp_port, args.aws_port
    opts.parameters = dict(args.parameters)
    if not opts.template.exists():
        raise ConfigError(f"template {opts.template} does not exist (run from the repo root)")
    if opts.feeds is not None and not opts.feeds.exists():
        raise ConfigError(f"feeds file {opts.feeds} does not exist")
    return opts


def describe(endpoints: Endpoints, stack: Any) -> str:
    """What ``ingest up`` prints once the stack is ready."""
    res = endpoints.resources
    lines = [
        "sftp-ingest local stack is up (moto data is in memory: it is gone when this stops)",
        f"  AWS endpoint : {endpoints.aws_endpoint_url}  (region {endpoints.region})",
        f"  bucket       : {res.get('bucket')}",
        f"  queue / DLQ  : {res.get('queue_url')}  /  {res.get('dlq_url')}",
        f"  tables       : records {res.get('table')}, ledger {res.get('ledger_table')}",
        f"  state dir    : {stack.state_dir}  (endpoints.json, host keys, partners, logs/)",
    ]
    if endpoints.sftp is not None:
        sftp = endpoints.sftp
        lines.append(
            f"  SFTP         : {sftp.host}:{sftp.port}  (Transfer server {res.get('server_id')})"
        )
        lines += [f"  host key     : {fp}" for fp in sftp.host_key_fingerprints]
        known = stack.state_dir / "known_hosts"
        key = stack.demo.private_key if stack.demo else Path("YOUR_PRIVATE_KEY")
        user = stack.demo.name if stack.demo else "PARTNER"
        lines += [
            "  connect with :",
            f"    sftp -P {sftp.port} -i {key} -o UserKnownHostsFile={known} "
            f"-o StrictHostKeyChecking=yes {user}@{sftp.host}",
        ]
        if stack.demo is None:
            lines.append("  add a partner: ingest partners add NAME --ssh-key KEY.pub")
    lines.append(f"  function logs: {stack.state_dir / 'logs'}/<FunctionLogicalId>.log")
    if stack.deployed is not None and stack.deployed.not_emulated:
        lines.append("  not emulated : " + ", ".join(stack.deployed.not_emulated))
    lines.append("  then         : ingest status   (Ctrl-C stops the stack)")
    return "\n".join(lines)


def cmd_up(args: argparse.Namespace) -> int:
    """Run the local stack in the foreground until SIGINT or SIGTERM."""
    require_local_extra()
    from ingest_local.stack import LocalStack  # noqa: PLC0415 (moto: slow import)

    # Warnings of the local Lambda service (function errors, retries) go to the console;
    # the functions' own output is in <state-dir>/logs/.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack = LocalStack(_options(args, demo_partner=args.demo_partner))
    try:
        endpoints = stack.start()
        print(describe(endpoints, stack), flush=True)
        while not stop.wait(1.0):
            pass
        print("stopping …", file=sys.stderr, flush=True)
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


# --- ingest demo -------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Start a stack, upload the fixture files over SFTP, wait, print each file's outcome."""
    from ingest_local.demo import run_demo  # noqa: PLC0415 (moto: slow import)

    opts = _options(args, demo_partner=True)
    return run_demo(opts, files=args.files, timeout=args.timeout, out=sys.stdout)


# --- ingest invoke -----------------------------------------------------------------------------


def cmd_invoke(args: argparse.Namespace) -> int:
    """Run one deployed function once, with its deployed environment, against the local stack."""

    state_dir = args.state_dir or default_state_dir()
    text = sys.stdin.read() if str(args.event) == "-" else _read(args.event)
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"event {args.event} is not valid JSON: {exc}") from exc
    try:
        result = invoke_function(state_dir, args.function, event, request_id=str(uuid.uuid4()))
    except FunctionError as exc:
        # The error payload the Lambda service returns for a function error.
        error = {"errorType": exc.error_type, "errorMessage": exc.error_message}
        print(json.dumps(error, indent=2))
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(f"event file {path} does not exist") from exc
