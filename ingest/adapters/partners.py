"""Partners: SFTP users of a Transfer Family server (real, or the local stack's in moto).

A partner named ``NAME`` is a Transfer user with a LOGICAL home directory whose ``/`` maps to
``/<bucket>/inbound/NAME``, and one or more SSH public keys. A session policy narrows the
shared user role to that prefix, so even a misconfigured mapping cannot reach another
partner's files.

moto has no ``list_users``, so the local stack also keeps a registry file
``<state-dir>/partners.json``; :func:`restore_partners` re-creates the users in a fresh
moto at stack start (moto's data lives in memory only).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh
from botocore.exceptions import ClientError

from ingest.adapters.sdk import error_code, unavailable
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_transfer.client import TransferClient

#: "no such user": AWS's code, and moto's.
USER_NOT_FOUND = frozenset({"ResourceNotFoundException", "UserNotFound"})
#: Transfer Family's rule for user names.
USER_NAME = re.compile(r"^[\w][\w@.-]{2,99}$")
PARTNERS_FILE = "partners.json"
PARTNER_PREFIX = "inbound"


class PartnerExistsError(ConfigError):
    """A partner of that name is already registered."""


class PartnerNotFoundError(ConfigError):
    """No partner of that name is registered."""


@dataclass(frozen=True)
class Partner:
    """A registered partner."""

    name: str
    bucket: str
    ssh_public_keys: list[str]
    role: str

    @property
    def home(self) -> str:
        """The S3 location of the partner's ``/``."""
        return f"/{self.bucket}/{PARTNER_PREFIX}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "home": self.home}


def session_policy(bucket: str) -> str:
    """The session policy that confines a user to ``inbound/${transfer:UserName}``."""
    prefix = f"{PARTNER_PREFIX}/${{transfer:UserName}}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListOwnPrefix",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{bucket}",
                    "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}},
                },
                {
                    "Sid": "ReadWriteOwnObjects",
                    "Effect": "Allow",
                    "Action": [
                        "s3:PutObject",
                        "s3:GetObject",
                        "s3:GetObjectVersion",
                        "s3:DeleteObject",
                        "s3:DeleteObjectVersion",
                        "s3:AbortMultipartUpload",
                    ],
                    "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
                },
            ],
        }
    )


def read_public_key(text: str) -> str:
    """Validate an OpenSSH public key line; returns it normalised (``type base64 [comment]``)."""
    try:
        key = asyncssh.import_public_key(text.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ConfigError(f"not an SSH public key: {exc}") from exc
    return key.export_public_key("openssh").decode().strip()


def _check_name(name: str) -> None:
    if not USER_NAME.match(name):
        raise ConfigError(
            f"partner name {name!r} must be 3-100 characters: letters, digits, _ @ . - "
            "(and not start with @ . -)"
        )


def add_partner(
    transfer: TransferClient,
    server_id: str,
    bucket: str,
    name: str,
    public_key: str,
    *,
    role: str,
    state_dir: Path | None = None,
) -> Partner:
    """Create the Transfer user for partner ``name`` (and record it in the local registry).

    ``role`` is the users' access role (the stack output ``TransferUserRoleArn``).
    """
    _check_name(name)
    partner = Partner(name, bucket, [read_public_key(public_key)], role)
    registry = _read_registry(state_dir) if state_dir else {}
    if name in registry:
        raise PartnerExistsError(f"partner {name!r} already exists")
    _create_user(transfer, server_id, partner)
    if state_dir is not None:
        registry[name] = partner.to_json()
        _write_registry(state_dir, registry)
    return partner


def remove_partner(
    transfer: TransferClient, server_id: str, name: str, *, state_dir: Path | None = None
) -> None:
    """Delete the partner's Transfer user (their files stay in S3)."""
    registry = _read_registry(state_dir) if state_dir else {}
    try:
        transfer.delete_user(ServerId=server_id, UserName=name)
    except ClientError as exc:
        if error_code(exc) not in USER_NOT_FOUND:
            raise unavailable(exc, "transfer", "DeleteUser", name) from exc
        if name not in registry:
            raise PartnerNotFoundError(f"no partner named {name!r}") from exc
    if state_dir is not None and registry.pop(name, None) is not None:
        _write_registry(state_dir, registry)


def list_partners(
    transfer: TransferClient, server_id: str, *, state_dir: Path | None = None
) -> list[Partner]:
    """Partners of a server: the local registry, or ``list_users`` on real Transfer."""
    if state_dir is not None:
        return [_from_json(v) for _, v in sorted(_read_registry(state_dir).items())]
    partners = []
    for page in transfer.get_paginator("list_users").paginate(ServerId=server_id):
        for user in page["Users"]:
            described = transfer.describe_user(ServerId=server_id, UserName=user["UserName"])
            partners.append(_from_user(dict(described["User"])))
    return partners


def restore_partners(transfer: TransferClient, server_id: str, state_dir: Path) -> list[Partner]:
    """Re-create every partner of the registry on a (fresh) server; returns them."""
    partners = list_partners(transfer, server_id, state_dir=state_dir)
    for partner in partners:
        with contextlib.suppress(ClientError):  # not there yet: the usual case on a fresh moto
            transfer.delete_user(ServerId=server_id, UserName=partner.name)
        _create_user(transfer, server_id, partner)
    return partners


def _create_user(transfer: TransferClient, server_id: str, partner: Partner) -> None:
    kwargs: dict[str, Any] = {
        "ServerId": server_id,
        "UserName": partner.name,
        "HomeDirectoryType": "LOGICAL",
        "HomeDirectoryMappings": [{"Entry": "/", "Target": partner.home}],
        "SshPublicKeyBody": partner.ssh_public_keys[0],
        "Policy": session_policy(partner.bucket),
        "Role": partner.role,
        "Tags": [{"Key": "sftp-ingest:partner", "Value": partner.name}],
    }
    try:
        transfer.create_user(**kwargs)
        for extra in partner.ssh_public_keys[1:]:
            transfer.import_ssh_public_key(
                ServerId=server_id, UserName=partner.name, SshPublicKeyBody=extra
            )
    except ClientError as exc:
        if error_code(exc) == "ResourceExistsException":
            raise PartnerExistsError(f"partner {partner.name!r} already exists") from exc
        raise unavailable(exc, "transfer", "CreateUser", partner.name) from exc


def _from_user(user: dict[str, Any]) -> Partner:
    target = next(
        (m["Target"] for m in user.get("HomeDirectoryMappings") or [] if m["Entry"] == "/"), ""
    )
    bucket = target.strip("/").split("/", 1)[0]
    keys = [k["SshPublicKeyBody"] for k in user.get("SshPublicKeys") or []]
    return Partner(user["UserName"], bucket, keys, user.get("Role") or "")


def _from_json(data: dict[str, Any]) -> Partner:
    return Partner(data["name"], data["bucket"], list(data["ssh_public_keys"]), data["role"])


def _read_registry(state_dir: Path) -> dict[str, dict[str, Any]]:
    path = state_dir / PARTNERS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    return dict(data.get("partners", {}))


def _write_registry(state_dir: Path, registry: dict[str, dict[str, Any]]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / PARTNERS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"partners": registry}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
