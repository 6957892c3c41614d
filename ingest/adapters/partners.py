"""Partners: SFTP users of a Transfer Family server (real, or the local stack's in moto).

A partner named ``NAME`` is a Transfer user with a LOGICAL home directory whose ``/`` maps to
``/<bucket>/inbound/NAME`` and whose ``/receipts`` maps, read-only, to
``/<bucket>/receipts/NAME`` (its files' receipts), and one or more SSH public keys. A session
policy narrows the shared user role to those two prefixes and denies every write under
``receipts/``, so even a misconfigured mapping cannot reach another partner's files or change
a receipt. :func:`repair_partner` brings an existing user up to that description.

moto has no ``list_users``, so the local stack also keeps a registry file
``<state-dir>/partners.json``; :func:`restore_partners` re-creates the users in a fresh
moto at stack start (moto's data lives in memory only).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh
from botocore.exceptions import ClientError
from msgspec import Struct
from msgspec.structs import asdict

from ingest.adapters.sdk import error_code, unavailable
from ingest.domain.receipts import RECEIPTS_PREFIX, partner_receipts_prefix
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_transfer.client import TransferClient

#: "no such user": AWS's code, and moto's.
USER_NOT_FOUND = frozenset({"ResourceNotFoundException", "UserNotFound"})
#: Transfer Family's rule for user names.
USER_NAME = re.compile(r"^[\w][\w@.-]{2,99}$")
PARTNERS_FILE = "partners.json"
PARTNER_PREFIX = "inbound"
#: where a partner's receipts appear in its SFTP view
RECEIPTS_ENTRY = "/receipts"
#: every S3 action that changes an object or its metadata: denied under receipts/
RECEIPT_WRITES = [
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:AbortMultipartUpload",
    "s3:RestoreObject",
]


class PartnerExistsError(ConfigError):
    """A partner of that name is already registered."""


class PartnerNotFoundError(ConfigError):
    """No partner of that name is registered."""


class Partner(Struct, frozen=True):
    """A registered partner."""

    name: str
    bucket: str
    ssh_public_keys: list[str]
    role: str

    @property
    def home(self) -> str:
        """The S3 location of the partner's ``/``."""
        return f"/{self.bucket}/{PARTNER_PREFIX}/{self.name}"

    @property
    def receipts(self) -> str:
        """The S3 location of the partner's read-only ``/receipts``."""
        return f"/{self.bucket}/{partner_receipts_prefix(self.name).rstrip('/')}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "home": self.home, "receipts": self.receipts}


def home_directory_mappings(bucket: str, name: str) -> list[dict[str, str]]:
    """The partner's logical directories: ``/`` its home, ``/receipts`` its receipts."""
    partner = Partner(name, bucket, [], "")
    return [
        {"Entry": "/", "Target": partner.home},
        {"Entry": RECEIPTS_ENTRY, "Target": partner.receipts},
    ]


def session_policy(bucket: str) -> str:
    """The session policy of every partner: read and write ``inbound/${transfer:UserName}``,
    read ``receipts/${transfer:UserName}``, and never write anything under ``receipts/``.

    Transfer Family evaluates it with the user's role on each S3 call (the policy variable is
    the user's name); the local gateway reads the same document
    (``ingest_local.gateway.policy``)."""
    home = f"{PARTNER_PREFIX}/${{transfer:UserName}}"
    receipts = f"{RECEIPTS_PREFIX}${{transfer:UserName}}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListOwnPrefix",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": f"arn:aws:s3:::{bucket}",
                    "Condition": {
                        "StringLike": {"s3:prefix": [f"{home}/*", home, f"{receipts}/*", receipts]}
                    },
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
                    "Resource": f"arn:aws:s3:::{bucket}/{home}/*",
                },
                {
                    "Sid": "ReadOwnReceipts",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": f"arn:aws:s3:::{bucket}/{receipts}/*",
                },
                {
                    "Sid": "ReceiptsAreReadOnly",
                    "Effect": "Deny",
                    "Action": RECEIPT_WRITES,
                    "Resource": f"arn:aws:s3:::{bucket}/{RECEIPTS_PREFIX}*",
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


def repair_partner(
    transfer: TransferClient,
    server_id: str,
    bucket: str,
    name: str,
    *,
    role: str | None = None,
    state_dir: Path | None = None,
) -> list[str]:
    """Bring partner ``name``'s Transfer user up to what :func:`add_partner` creates now: a
    LOGICAL home, the mappings of :func:`home_directory_mappings`, the session policy of
    :func:`session_policy`, and ``role`` when given (else the user's own).

    Returns what changed, one line each (``[]``: it already matched; calling it again changes
    nothing). One ``UpdateUser`` makes every change; the user's keys and tags stay."""
    try:
        user = dict(transfer.describe_user(ServerId=server_id, UserName=name)["User"])
    except ClientError as exc:
        if error_code(exc) in USER_NOT_FOUND:
            raise PartnerNotFoundError(f"no partner named {name!r}") from exc
        raise unavailable(exc, "transfer", "DescribeUser", name) from exc
    role = role or str(user.get("Role") or "")
    if not role:
        raise ConfigError(f"partner {name!r} has no role: pass --role")
    wanted: dict[str, Any] = {
        "HomeDirectoryType": "LOGICAL",
        "HomeDirectoryMappings": home_directory_mappings(bucket, name),
        "Policy": session_policy(bucket),
        "Role": role,
    }
    changes = _differences(user, wanted)
    if changes:
        try:
            transfer.update_user(ServerId=server_id, UserName=name, **wanted)
        except ClientError as exc:
            raise unavailable(exc, "transfer", "UpdateUser", name) from exc
    registry = _read_registry(state_dir) if state_dir else {}
    if state_dir is not None and name in registry and registry[name].get("role") != role:
        registry[name]["role"] = role
        _write_registry(state_dir, registry)
    return changes


def _differences(user: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What differs between a described user and ``wanted``, as lines for people."""
    changes = []
    if user.get("HomeDirectoryType") != wanted["HomeDirectoryType"]:
        changes.append(
            f"HomeDirectoryType: {user.get('HomeDirectoryType')} -> {wanted['HomeDirectoryType']}"
        )
    have = {m["Entry"]: m["Target"].rstrip("/") for m in user.get("HomeDirectoryMappings") or []}
    want = {m["Entry"]: m["Target"] for m in wanted["HomeDirectoryMappings"]}
    for entry in sorted(have.keys() | want.keys()):
        if entry not in want:
            changes.append(f"HomeDirectoryMappings: - {entry} -> {have[entry]}")
        elif entry not in have:
            changes.append(f"HomeDirectoryMappings: + {entry} -> {want[entry]}")
        elif have[entry] != want[entry]:
            changes.append(f"HomeDirectoryMappings: {entry} -> {have[entry]} becomes {want[entry]}")
    changes += _policy_differences(user.get("Policy"), wanted["Policy"])
    if user.get("Role") != wanted["Role"]:
        changes.append(f"Role: {user.get('Role')} -> {wanted['Role']}")
    return changes


def _policy_differences(have: str | None, want: str) -> list[str]:
    """The session policy's statements added, removed or changed (by Sid)."""
    if not have:
        return ["Policy: set (there was none)"]
    try:
        document = json.loads(have)
        old = {s.get("Sid", str(i)): s for i, s in enumerate(document["Statement"])}
    except (ValueError, KeyError, TypeError, AttributeError):
        return ["Policy: replaced (the old one was not a policy document)"]
    if document == json.loads(want):
        return []
    new = {s["Sid"]: s for s in json.loads(want)["Statement"]}
    lines = [f"Policy: - statement {sid}" for sid in old if sid not in new]
    for sid, statement in new.items():
        if sid not in old:
            lines.append(f"Policy: + statement {sid}")
        elif old[sid] != statement:
            lines.append(f"Policy: statement {sid} updated")
    return lines or ["Policy: updated"]


def _create_user(transfer: TransferClient, server_id: str, partner: Partner) -> None:
    kwargs: dict[str, Any] = {
        "ServerId": server_id,
        "UserName": partner.name,
        "HomeDirectoryType": "LOGICAL",
        "HomeDirectoryMappings": home_directory_mappings(partner.bucket, partner.name),
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
