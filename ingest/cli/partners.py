"""``ingest partners add|list|remove|repair|set-pgp-key``: SFTP partners, as Transfer Family
users, and the PGP keys their files are decrypted with.

The same commands serve a deployed stack (``--stack``: real Transfer Family, and the stack's
``TransferUserRoleArn``) and the local stack (``--state-dir``: moto's Transfer API, read back
by the local gateway).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ingest.adapters.partners import add_partner, list_partners, remove_partner, repair_partner
from ingest.adapters.pgp_keys import PgpKey, store_key
from ingest.cli.context import add_target_arguments, ensure_local_credentials, resolve_deployment
from ingest.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add ``ingest partners`` to the ``ingest`` parser."""
    partners = subparsers.add_parser("partners", help="SFTP partners (Transfer users)")
    actions = partners.add_subparsers(dest="partners_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a partner with an SSH public key")
    add.add_argument("name")
    add.add_argument("--ssh-key", type=Path, required=True, help="the partner's public key file")
    add.add_argument("--server-id", default=None, help="Transfer server (default: the stack's)")
    add.add_argument("--role", default=None, help="users' role ARN (default: the stack's)")
    add_target_arguments(add)
    add.set_defaults(func=cmd_partners_add)
    lst = actions.add_parser("list", help="registered partners")
    lst.add_argument("--server-id", default=None)
    lst.add_argument("--json", action="store_true")
    add_target_arguments(lst)
    lst.set_defaults(func=cmd_partners_list)
    remove = actions.add_parser("remove", help="delete a partner's user (their files stay)")
    remove.add_argument("name")
    remove.add_argument("--server-id", default=None)
    add_target_arguments(remove)
    remove.set_defaults(func=cmd_partners_remove)
    repair = actions.add_parser(
        "repair",
        help="bring a partner's user up to date (its /receipts mapping, the session policy)",
    )
    repair.add_argument("name")
    repair.add_argument("--server-id", default=None)
    repair.add_argument("--role", default=None, help="set this role ARN (default: keep the user's)")
    add_target_arguments(repair)
    repair.set_defaults(func=cmd_partners_repair)
    pgp = actions.add_parser(
        "set-pgp-key",
        help="store the PGP private key a partner's files are decrypted with "
        "(secret aws/transfer/<server-id>/NAME; NAME @pgp-default: every partner's fallback)",
    )
    pgp.add_argument("name")
    pgp.add_argument("--private-key", type=Path, required=True, help="armored private key file")
    pgp.add_argument(
        "--passphrase-env", default=None, metavar="VAR", help="env var holding its passphrase"
    )
    pgp.add_argument(
        "--public-key",
        type=Path,
        default=None,
        help="the partner's own public key: signed files must then verify against it",
    )
    pgp.add_argument("--server-id", default=None, help="Transfer server (default: the stack's)")
    add_target_arguments(pgp)
    pgp.set_defaults(func=cmd_partners_set_pgp_key)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(f"file {path} does not exist") from exc


def _transfer_target(args: argparse.Namespace) -> tuple[Any, str, Any]:
    deployment = resolve_deployment(args)
    if deployment.is_local:
        ensure_local_credentials()
    server_id = args.server_id or deployment.resource("server_id")
    return deployment.aws.client("transfer"), server_id, deployment


def cmd_partners_add(args: argparse.Namespace) -> int:

    transfer, server_id, deployment = _transfer_target(args)
    role = args.role or deployment.resources.get("TransferUserRoleArn")
    if role is None:
        raise ConfigError("the stack has no TransferUserRoleArn output: pass --role")
    partner = add_partner(
        transfer,
        server_id,
        deployment.resource("bucket"),
        args.name,
        _read(args.ssh_key),
        role=role,
        state_dir=deployment.state_dir,
    )
    print(f"partner {partner.name}: / → s3:/{partner.home}/")
    print(f"partner {partner.name}: /receipts → s3:/{partner.receipts}/ (read-only)")
    return 0


def cmd_partners_list(args: argparse.Namespace) -> int:

    transfer, server_id, deployment = _transfer_target(args)
    partners = list_partners(transfer, server_id, state_dir=deployment.state_dir)
    if args.json:
        print(json.dumps([p.to_json() for p in partners], indent=2))
    else:
        for p in partners:
            print(f"{p.name}\ts3:/{p.home}/\t{len(p.ssh_public_keys)} key(s)")
    return 0


def cmd_partners_remove(args: argparse.Namespace) -> int:

    transfer, server_id, deployment = _transfer_target(args)
    remove_partner(transfer, server_id, args.name, state_dir=deployment.state_dir)
    print(f"partner {args.name} removed (their files stay in S3)")
    return 0


def cmd_partners_repair(args: argparse.Namespace) -> int:

    transfer, server_id, deployment = _transfer_target(args)
    changes = repair_partner(
        transfer,
        server_id,
        deployment.resource("bucket"),
        args.name,
        role=args.role,
        state_dir=deployment.state_dir,
    )
    for change in changes:
        print(f"partner {args.name}: {change}")
    if not changes:
        print(f"partner {args.name}: already up to date")
    return 0


def cmd_partners_set_pgp_key(args: argparse.Namespace) -> int:

    passphrase = None
    if args.passphrase_env:
        passphrase = os.environ.get(args.passphrase_env)
        if passphrase is None:
            raise ConfigError(f"environment variable {args.passphrase_env} is not set")
    key = PgpKey(
        secret="",
        private_key=_read(args.private_key),
        passphrase=passphrase,
        public_key=_read(args.public_key) if args.public_key else None,
    )
    fingerprint = _check_pgp_key(key)
    deployment = resolve_deployment(args)
    if deployment.is_local:
        ensure_local_credentials()
    server_id = args.server_id or deployment.resource("server_id")
    name = store_key(deployment.aws.client("secretsmanager"), server_id, args.name, key)
    print(f"partner {args.name}: PGP key {fingerprint} stored in secret {name}")
    return 0


def _check_pgp_key(key: PgpKey) -> str:
    """The key's fingerprint, once it is known to be a private key that the passphrase opens."""
    import pysequoia  # noqa: PLC0415  (only this command loads Sequoia)

    try:
        tsk = pysequoia.Tsk.from_bytes(key.private_key.encode())
        tsk.decryptor(key.passphrase)
        if key.public_key is not None:
            pysequoia.Cert.from_bytes(key.public_key.encode())
    except Exception as exc:  # pysequoia raises plain exceptions with Sequoia's message
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"not a usable PGP private key (and passphrase): {first}") from exc
    return tsk.extract_certificate().fingerprint.upper()
