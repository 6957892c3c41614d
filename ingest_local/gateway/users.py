"""Transfer users as the gateway serves them, read with ``transfer.describe_user``.

The Transfer API is the one source of truth, as in Transfer Family: a login looks the user
up, and a live session looks it up again before each operation on names, so removing a
partner, its key or changing its home directory takes effect at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncssh
from botocore.exceptions import ClientError

from ingest.adapters.partners import USER_NAME, USER_NOT_FOUND
from ingest.adapters.sdk import error_code
from ingest.shared.uris import parse_bucket_path
from ingest_local.gateway.context import TransferUser
from ingest_local.gateway.paths import LogicalRoot, Mount, View
from ingest_local.gateway.policy import object_actions

if TYPE_CHECKING:
    from mypy_boto3_transfer.client import TransferClient


def user_from_description(described: dict[str, Any], bucket: str) -> TransferUser:
    """A :class:`TransferUser` from ``describe_user()['User']``.

    Only logical home directories whose ``/`` maps into the gateway's bucket are served:
    anything else would let a user see more than their own prefix. Further mappings
    (``/receipts``) must target the same bucket too; what the user may do in each comes
    from its session policy (:func:`ingest_local.gateway.policy.object_actions`).
    """
    name = described["UserName"]
    if described.get("HomeDirectoryType") != "LOGICAL":
        raise ValueError(f"user {name!r}: only LOGICAL home directories are supported")
    mappings = described.get("HomeDirectoryMappings") or []
    if sum(1 for m in mappings if m["Entry"].strip("/") == "") != 1:
        raise ValueError(f"user {name!r}: needs exactly one mapping with Entry '/'")
    home: Mount | None = None
    mounts: list[Mount] = []
    for mapping in mappings:
        entry = tuple(p for p in mapping["Entry"].split("/") if p)
        try:
            target = parse_bucket_path("/" + mapping["Target"].strip("/"))
        except ValueError:
            target = None
        if target is None or target.bucket != bucket or not target.key:
            raise ValueError(
                f"user {name!r}: {mapping['Entry']!r} must map to a prefix of /{bucket}/"
            )
        if any(p in (".", "..") for p in entry) or any(m.entry == entry for m in mounts):
            raise ValueError(f"user {name!r}: mapping entry {mapping['Entry']!r} is not usable")
        root = LogicalRoot(bucket, target.key.rstrip("/"))
        actions = object_actions(described.get("Policy"), root, username=name, home_bucket=bucket)
        if entry:
            mounts.append(Mount(entry, root, actions))
        else:
            home = Mount((), root, actions)
    assert home is not None
    keys = []
    for key_entry in described.get("SshPublicKeys") or []:
        try:
            keys.append(asyncssh.import_public_key(key_entry["SshPublicKeyBody"]))
        except (asyncssh.KeyImportError, ValueError):
            continue  # a malformed stored key can never match; the others still work
    return TransferUser(
        name=name,
        root=home.root,
        public_keys=keys,
        role=described.get("Role"),
        view=View(home, tuple(mounts)),
    )


def describe_user(
    transfer: TransferClient, server_id: str, bucket: str, username: str
) -> TransferUser | None:
    """The user as the Transfer API has it now, or None if there is no such user (blocking).

    Raises ``ClientError`` when the API fails and ``ValueError``/``KeyError`` when the user
    exists but cannot be served (see :func:`user_from_description`)."""
    if not USER_NAME.match(username):
        return None
    try:
        resp = transfer.describe_user(ServerId=server_id, UserName=username)
    except ClientError as exc:
        if error_code(exc) in USER_NOT_FOUND:
            return None
        raise
    return user_from_description(dict(resp["User"]), bucket)


def revoked(session_user: TransferUser, key_data: bytes | None, now: TransferUser | None) -> str:
    """Why a session that logged in as ``session_user`` with ``key_data`` may no longer act
    (``now`` is the user as described now), or "" if it still may."""
    if now is None:
        return "the user no longer exists"
    if key_data is not None and not any(k.public_data == key_data for k in now.public_keys):
        return "the key this session logged in with was removed from the user"
    if now.view != session_user.view:
        return "the user's home directory or its mappings changed"
    return ""
