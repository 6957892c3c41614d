"""Partner registry through the Transfer API (moto) and the local registry file."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest
from gateway_kit import USER_ROLE, AwsWorld

from ingest.adapters.partners import (
    PartnerExistsError,
    PartnerNotFoundError,
    add_partner,
    list_partners,
    remove_partner,
    restore_partners,
    session_policy,
)
from ingest.errors import ConfigError


def public_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()


def test_add_creates_a_logical_transfer_user(world: AwsWorld, tmp_path: Path) -> None:
    transfer = world.client("transfer")
    key = public_key()
    partner = add_partner(
        transfer, world.server_id, world.bucket, "acme", key, role=USER_ROLE, state_dir=tmp_path
    )
    assert partner.home == f"/{world.bucket}/inbound/acme"
    user = transfer.describe_user(ServerId=world.server_id, UserName="acme")["User"]
    assert user["HomeDirectoryType"] == "LOGICAL"
    assert user["HomeDirectoryMappings"][0]["Entry"] == "/"
    assert user["HomeDirectoryMappings"][0]["Target"] == f"/{world.bucket}/inbound/acme"
    assert user["SshPublicKeys"][0]["SshPublicKeyBody"] == key.strip()
    assert user["Role"] == USER_ROLE
    policy = json.loads(user["Policy"])
    resources = json.dumps(policy)
    assert "inbound/${transfer:UserName}/*" in resources
    assert policy == json.loads(session_policy(world.bucket))
    registry = json.loads((tmp_path / "partners.json").read_text())
    assert list(registry["partners"]) == ["acme"]
    assert user["HomeDirectoryMappings"][1]["Entry"] == "/receipts"
    assert user["HomeDirectoryMappings"][1]["Target"] == f"/{world.bucket}/receipts/acme"
    assert registry["partners"]["acme"]["receipts"] == f"/{world.bucket}/receipts/acme"


def test_bad_names_keys_and_duplicates_are_refused(world: AwsWorld, tmp_path: Path) -> None:
    transfer = world.client("transfer")
    for name in ("ab", "../x", "-lead", "a b c", "x" * 101):
        with pytest.raises(ConfigError, match="partner name"):
            add_partner(
                transfer,
                world.server_id,
                world.bucket,
                name,
                public_key(),
                role=USER_ROLE,
                state_dir=tmp_path,
            )
    with pytest.raises(ConfigError, match="not an SSH public key"):
        add_partner(
            transfer,
            world.server_id,
            world.bucket,
            "acme",
            "ssh-ed25519 AAAAnope",
            role=USER_ROLE,
            state_dir=tmp_path,
        )
    add_partner(
        transfer,
        world.server_id,
        world.bucket,
        "acme",
        public_key(),
        role=USER_ROLE,
        state_dir=tmp_path,
    )
    with pytest.raises(PartnerExistsError):
        add_partner(
            transfer,
            world.server_id,
            world.bucket,
            "acme",
            public_key(),
            role=USER_ROLE,
            state_dir=tmp_path,
        )


def test_list_restore_and_remove(world: AwsWorld, tmp_path: Path) -> None:
    transfer = world.client("transfer")
    for name in ("globex", "acme"):
        add_partner(
            transfer,
            world.server_id,
            world.bucket,
            name,
            public_key(),
            role=USER_ROLE,
            state_dir=tmp_path,
        )
    assert [p.name for p in list_partners(transfer, world.server_id, state_dir=tmp_path)] == [
        "acme",
        "globex",
    ]
    # a fresh moto (ingest up restarts): the registry brings the users back
    fresh = transfer.create_server(Domain="S3", Protocols=["SFTP"])["ServerId"]
    restored = restore_partners(transfer, fresh, tmp_path)
    assert [p.name for p in restored] == ["acme", "globex"]
    user = transfer.describe_user(ServerId=fresh, UserName="globex")["User"]
    assert user["HomeDirectoryMappings"][0]["Target"] == f"/{world.bucket}/inbound/globex"
    assert restore_partners(transfer, fresh, tmp_path) == restored  # idempotent

    remove_partner(transfer, world.server_id, "acme", state_dir=tmp_path)
    assert [p.name for p in list_partners(transfer, world.server_id, state_dir=tmp_path)] == [
        "globex"
    ]
    with pytest.raises(PartnerNotFoundError):
        remove_partner(transfer, world.server_id, "acme", state_dir=tmp_path)
