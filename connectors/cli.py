"""``ingest connectors``: create, list, describe, delete, scan, test, transfer, results, listing.

Every command except ``scan`` takes ``--state-dir`` (the local stack: moto holds the
connectors and secrets, our engine moves the files) or ``--stack`` / ``--region`` (AWS: the
Transfer Family API; ``--engine builtin`` runs our engine from this machine instead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from connectors import cli_schedule, config
from connectors.hostkeys import scan_host_keys
from connectors.jobs import FINAL
from connectors.request_rules import join_key, split_s3_path
from connectors.service import BuiltinConnectorService
from connectors.status import StatusStore
from connectors.usecases import BUILTIN, ENGINE_ALIASES, ENGINES, MANAGED, engine_name
from connectors.wiring import account_id, build_builtin_service
from ingest.cli.context import Deployment, add_target_arguments, resolve_deployment
from ingest.cli.output import TransferProgress
from ingest.errors import ConfigError
from ingest.shared.polling import PollTimeoutError, poll_until


def register(subparsers: Any) -> None:
    """Add ``connectors`` and its subcommands to the ``ingest`` parser."""
    top = subparsers.add_parser(
        "connectors", help="SFTP connectors: pull from / push to partners' SFTP servers"
    )
    sub = top.add_subparsers(dest="connectors_command", required=True, metavar="SUBCOMMAND")
    _register_create(sub)
    _register_admin(sub)
    _register_transfers(sub)
    cli_schedule.register(sub)


def _register_create(sub: Any) -> None:
    p = sub.add_parser("create", help="create a connector; prints its id")
    p.add_argument("--url", required=True, help="sftp://HOST[:PORT]")
    p.add_argument("--user", required=True, help="login name on the partner's server")
    login = p.add_mutually_exclusive_group(required=True)
    login.add_argument("--private-key", type=Path, help="file with the OpenSSH private key")
    login.add_argument(
        "--password-env", metavar="VAR", help="environment variable with the password"
    )
    p.add_argument(
        "--trusted-host-key",
        action="append",
        required=True,
        metavar="KEY",
        help="a trusted host key: 'ssh-ed25519 AAAA…', a known_hosts line, SHA256:… or MD5 "
        "aa:bb:…; repeat for rotation (see 'ingest connectors scan')",
    )
    p.add_argument("--max-connections", type=int, default=1, help="1-5 (default 1)")
    p.add_argument("--access-role", help="AccessRole ARN (default: the stack's)")
    p.add_argument("--logging-role", help="LoggingRole ARN (default: the stack's)")
    _common(p, _create)


def _register_admin(sub: Any) -> None:
    p = sub.add_parser("list", help="list connectors")
    p.add_argument("--json", action="store_true")
    _common(p, _list)

    p = sub.add_parser("describe", help="show one connector")
    p.add_argument("connector_id")
    _common(p, _describe)

    p = sub.add_parser("delete", help="delete a connector (and the secret it created)")
    p.add_argument("connector_id")
    _common(p, _delete)

    p = sub.add_parser("scan", help="print a server's host keys in every accepted form")
    p.add_argument("target", metavar="HOST[:PORT]")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=_scan)

    p = sub.add_parser("test", help="TestConnection: connect, verify, authenticate")
    p.add_argument("connector_id")
    _common(p, _test, engine=True)


def _register_transfers(sub: Any) -> None:
    p = sub.add_parser("transfer", help="retrieve or send files (1-10 per call) and wait")
    p.add_argument("connector_id")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--retrieve", nargs="+", metavar="PATH", help="remote file paths")
    what.add_argument("--send", nargs="+", metavar="/BUCKET/KEY", help="S3 objects to send")
    p.add_argument("--to", metavar="/BUCKET/PREFIX", help="where retrieved files land")
    p.add_argument("--remote-dir", help="remote directory for sent files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for a managed transfer's files to be final (3600)",
    )
    _common(p, _transfer, engine=True)

    p = sub.add_parser("results", help="ListFileTransferResults of one transfer")
    p.add_argument("connector_id")
    p.add_argument("transfer_id")
    p.add_argument("--json", action="store_true")
    _common(p, _results, engine=True)

    p = sub.add_parser("listing", help="StartDirectoryListing into S3, and print it")
    p.add_argument("connector_id")
    p.add_argument("--remote-dir", required=True)
    p.add_argument("--to", required=True, metavar="/BUCKET/PREFIX")
    p.add_argument("--max-items", type=int, default=None)
    _common(p, _listing, engine=True)


def _common(p: argparse.ArgumentParser, func: Any, *, engine: bool = False) -> None:
    add_target_arguments(p)
    if engine:
        p.add_argument(
            "--engine",
            choices=(*ENGINES, *ENGINE_ALIASES),
            default=None,
            help="who moves files: our builtin engine (default with --state-dir; 'local' is its "
            "old name) or Transfer Family, managed (default against AWS)",
        )
    p.set_defaults(func=func)


# --- helpers ---------------------------------------------------------------------------------


def _engine(args: argparse.Namespace, dep: Deployment) -> str:
    chosen = getattr(args, "engine", None) or (BUILTIN if dep.is_local else MANAGED)
    return engine_name(str(chosen))


def _builtin_service(dep: Deployment) -> BuiltinConnectorService:
    return build_builtin_service(dep.aws, dep.resource("ledger_table"))


def _api(args: argparse.Namespace, dep: Deployment) -> Any:
    if _engine(args, dep) == MANAGED:
        return dep.aws.client("transfer")
    return _builtin_service(dep)


def _close(api: Any) -> None:
    if isinstance(api, BuiltinConnectorService):
        api.close()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# --- configuration commands ------------------------------------------------------------------


def _create(args: argparse.Namespace) -> int:
    dep = resolve_deployment(args)
    if args.private_key is not None:
        try:
            private_key, password = args.private_key.read_text(), None
        except OSError as exc:
            raise ConfigError(f"cannot read the private key {args.private_key}: {exc}") from exc
    else:
        password, private_key = os.environ.get(args.password_env), None
        if not password:
            raise ConfigError(f"environment variable {args.password_env} is not set")
    access_role = args.access_role or dep.resources.get("ConnectorAccessRoleArn")
    if not access_role:
        # The local stack has no IAM to speak of; the ARN only has to look like AWS's.
        access_role = f"arn:aws:iam::{account_id(dep.aws)}:role/sftp-ingest-connector-access"
    connector_id = config.create_connector(
        dep.aws.client("transfer"),
        dep.aws.client("secretsmanager"),
        url=args.url,
        username=args.user,
        private_key=private_key,
        password=password,
        trusted_host_keys=args.trusted_host_key,
        max_connections=args.max_connections,
        access_role=access_role,
        logging_role=args.logging_role or dep.resources.get("ConnectorLoggingRoleArn"),
    )
    print(connector_id)
    return 0


def _list(args: argparse.Namespace) -> int:
    dep = resolve_deployment(args)
    connectors = config.list_connectors(dep.aws.client("transfer"))
    if args.json:
        _print_json(connectors)
    else:
        for c in connectors:
            print(f"{c['ConnectorId']}  {c['Url']}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    dep = resolve_deployment(args)
    found = config.describe_connector(dep.aws.client("transfer"), args.connector_id)
    _print_json(msgspec.to_builtins(found))
    return 0


def _delete(args: argparse.Namespace) -> int:
    dep = resolve_deployment(args)
    config.delete_connector(
        dep.aws.client("transfer"), dep.aws.client("secretsmanager"), args.connector_id
    )
    print(f"deleted {args.connector_id}")
    return 0


def _scan(args: argparse.Namespace) -> int:
    host, _, port_text = (
        args.target.rpartition(":") if ":" in args.target else (args.target, "", "")
    )
    if not host:
        host, port_text = args.target, ""
    try:
        port = int(port_text) if port_text else 22
    except ValueError as exc:
        raise ConfigError(f"bad port in {args.target!r}") from exc
    try:
        keys = asyncio.run(scan_host_keys(host.strip("[]"), port, timeout=args.timeout))
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach {host}:{port}: {exc}") from exc
    if not keys:
        raise ConfigError(f"{host}:{port} presented no host key")
    if args.json:
        _print_json(msgspec.to_builtins(keys))
        return 0
    print(f"# host keys of {host}:{port} — verify one out of band before trusting it;")
    print("# any one line of a key may be passed to --trusted-host-key")
    for k in keys:
        print(f"\n{k.algorithm}")
        print(f"  key:         {k.public_key}")
        print(f"  known_hosts: {k.known_hosts}")
        print(f"  sha256:      {k.sha256}")
        print(f"  md5:         {k.md5}")
    return 0


# --- transfer commands -----------------------------------------------------------------------


def _test(args: argparse.Namespace) -> int:
    dep = resolve_deployment(args)
    api = _api(args, dep)
    try:
        result = api.test_connection(ConnectorId=args.connector_id)
    finally:
        _close(api)
    result.pop("ResponseMetadata", None)
    _print_json(result)
    return 0 if result.get("Status") == "OK" else 1


def _transfer(args: argparse.Namespace) -> int:
    dep = resolve_deployment(args)
    if args.retrieve and not args.to:
        raise ConfigError("--retrieve needs --to /bucket/prefix")
    if args.send and not args.remote_dir:
        raise ConfigError("--send needs --remote-dir DIR")
    paths: list[str] = args.retrieve or args.send
    if _engine(args, dep) == MANAGED:
        return _transfer_managed(args, dep, paths)
    service = _builtin_service(dep)
    try:
        with TransferProgress(paths, sys.stderr, enabled=not args.quiet) as bars:
            records = service.run(
                service.file_transfer(
                    args.connector_id,
                    retrieve_file_paths=args.retrieve,
                    local_directory_path=args.to,
                    send_file_paths=args.send,
                    remote_directory_path=args.remote_dir,
                    progress=bars.update,
                )
            )
    finally:
        service.close()
    print(records[0].transfer_id)
    failed = [r for r in records if r.status != "COMPLETED"]
    for r in failed:
        print(f"FAILED {r.file_path}: {r.failure_code}: {r.failure_message}", file=sys.stderr)
    return 1 if failed else 0


def _transfer_managed(args: argparse.Namespace, dep: Deployment, paths: list[str]) -> int:
    transfer = dep.aws.client("transfer")
    kwargs: dict[str, Any] = {"ConnectorId": args.connector_id}
    if args.retrieve:
        kwargs.update(RetrieveFilePaths=paths, LocalDirectoryPath=args.to)
    else:
        kwargs.update(SendFilePaths=paths, RemoteDirectoryPath=args.remote_dir)
    transfer_id = transfer.start_file_transfer(**kwargs)["TransferId"]
    print(transfer_id)

    def final_results() -> list[Any] | None:
        results = _managed_results(transfer, args.connector_id, transfer_id)
        final = len(results) >= len(paths) and all(r["StatusCode"] in FINAL for r in results)
        return results if final else None

    # the managed service is asynchronous: wait until every file is final, or give up
    try:
        results = poll_until(
            final_results, timeout=args.timeout, interval=2.0, what=f"transfer {transfer_id}"
        )
    except PollTimeoutError as exc:
        raise ConfigError(f"{exc}; see 'ingest connectors results'") from exc
    failed = [r for r in results if r["StatusCode"] != "COMPLETED"]
    for r in failed:
        print(
            f"FAILED {r['FilePath']}: {r.get('FailureCode')}: {r.get('FailureMessage')}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _managed_results(transfer: Any, connector_id: str, transfer_id: str) -> list[Any]:
    """Every page of ListFileTransferResults."""
    pages = transfer.get_paginator("list_file_transfer_results").paginate(
        ConnectorId=connector_id, TransferId=transfer_id
    )
    return [r for page in pages for r in page["FileTransferResults"]]


def _results(args: argparse.Namespace) -> int:
    dep = resolve_deployment(args)
    if _engine(args, dep) == MANAGED:
        results = _managed_results(dep.aws.client("transfer"), args.connector_id, args.transfer_id)
    else:
        store = StatusStore(dep.aws.client("dynamodb"), dep.resource("ledger_table"))
        found = store.results(args.connector_id, args.transfer_id)
        if found is None:
            raise ConfigError(
                f"transfer {args.transfer_id} of connector {args.connector_id} is unknown"
            )
        results = found
    shaped = [
        {
            "FilePath": r["FilePath"],
            "StatusCode": r["StatusCode"],
            "FailureCode": r.get("FailureCode"),
            "FailureMessage": r.get("FailureMessage"),
        }
        for r in results
    ]
    if args.json:
        _print_json(shaped)
    else:
        for r in shaped:
            tail = f"  {r['FailureCode']}: {r['FailureMessage']}" if r["FailureCode"] else ""
            print(f"{r['StatusCode']:<11} {r['FilePath']}{tail}")
    return 0


def _listing(args: argparse.Namespace) -> int:
    dep = resolve_deployment(args)
    api = _api(args, dep)
    kwargs: dict[str, Any] = {
        "ConnectorId": args.connector_id,
        "RemoteDirectoryPath": args.remote_dir,
        "OutputDirectoryPath": args.to,
    }
    if args.max_items is not None:
        kwargs["MaxItems"] = args.max_items
    try:
        out = api.start_directory_listing(**kwargs)
    finally:
        _close(api)
    out.pop("ResponseMetadata", None)
    bucket, prefix = split_s3_path(args.to.rstrip("/"), "--to")
    key = join_key(prefix, out["OutputFileName"])
    print(f"s3://{bucket}/{key}", file=sys.stderr)
    if _engine(args, dep) == BUILTIN:
        body = dep.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        _print_json(json.loads(body))
    else:
        _print_json(out)
    return 0
