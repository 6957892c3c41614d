"""``ingest partners repair``: a partner added before receipts (one mapping, the old session
policy) is brought up to date in one UpdateUser, idempotently, and then sees ``/receipts``
through the real gateway; its keys, tags and role stay."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
from gateway_kit import REGION, USER_ROLE, AwsWorld, GatewayThread, PartnerKeys, paramiko_sftp

from ingest.adapters.partners import (
    PartnerNotFoundError,
    home_directory_mappings,
    repair_partner,
    session_policy,
)
from ingest.cli import main
from ingest_local.moto_fidelity import transfer_update_user

#: the session policy ``ingest partners add`` gave partners before receipts
OLD_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ListOwnPrefix",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::{bucket}",
            "Condition": {
                "StringLike": {
                    "s3:prefix": ["inbound/${transfer:UserName}/*", "inbound/${transfer:UserName}"]
                }
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
            "Resource": "arn:aws:s3:::{bucket}/inbound/${transfer:UserName}/*",
        },
    ],
}


@pytest.fixture(autouse=True)
def _update_user() -> Iterator[None]:
    transfer_update_user()  # moto has no UpdateUser; the local stack adds it the same way
    yield


@pytest.fixture
def old_partner(world: AwsWorld, make_partner: Callable[..., PartnerKeys]) -> PartnerKeys:
    """Partner acme as ``partners add`` created it before receipts, with a second key."""
    partner = make_partner("acme", register=False)
    transfer = world.client("transfer")
    policy = json.dumps(OLD_POLICY).replace("{bucket}", world.bucket)
    transfer.create_user(
        ServerId=world.server_id,
        UserName="acme",
        HomeDirectoryType="LOGICAL",
        HomeDirectoryMappings=[{"Entry": "/", "Target": f"/{world.bucket}/inbound/acme"}],
        SshPublicKeyBody=partner.public_line,
        Policy=policy,
        Role=USER_ROLE,
        Tags=[{"Key": "sftp-ingest:partner", "Value": "acme"}],
    )
    second = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    transfer.import_ssh_public_key(
        ServerId=world.server_id, UserName="acme", SshPublicKeyBody=second
    )
    return partner


def test_repair_adds_the_receipts_mapping_and_policy_once(
    world: AwsWorld, old_partner: PartnerKeys
) -> None:
    transfer = world.client("transfer")
    before = transfer.describe_user(ServerId=world.server_id, UserName="acme")["User"]
    changes = repair_partner(transfer, world.server_id, world.bucket, "acme")
    assert changes == [
        f"HomeDirectoryMappings: + /receipts -> /{world.bucket}/receipts/acme",
        "Policy: statement ListOwnPrefix updated",
        "Policy: + statement ReadOwnReceipts",
        "Policy: + statement ReceiptsAreReadOnly",
    ]
    user = transfer.describe_user(ServerId=world.server_id, UserName="acme")["User"]
    assert [(m["Entry"], m["Target"]) for m in user["HomeDirectoryMappings"]] == [
        ("/", f"/{world.bucket}/inbound/acme"),
        ("/receipts", f"/{world.bucket}/receipts/acme"),
    ]
    assert json.loads(user["Policy"]) == json.loads(session_policy(world.bucket))
    assert user["HomeDirectoryType"] == "LOGICAL"
    assert (user["Role"], user["Tags"]) == (USER_ROLE, before["Tags"])
    assert [k["SshPublicKeyBody"] for k in user["SshPublicKeys"]] == [
        k["SshPublicKeyBody"] for k in before["SshPublicKeys"]
    ]
    assert len(user["SshPublicKeys"]) == 2

    assert repair_partner(transfer, world.server_id, world.bucket, "acme") == []  # idempotent
    other_role = "arn:aws:iam::123456789012:role/other"
    assert repair_partner(transfer, world.server_id, world.bucket, "acme", role=other_role) == [
        f"Role: {USER_ROLE} -> {other_role}"
    ]
    with pytest.raises(PartnerNotFoundError):
        repair_partner(transfer, world.server_id, world.bucket, "nobody")


def test_a_repaired_partner_sees_its_receipts_and_old_sessions_end(
    gw: GatewayThread, world: AwsWorld, old_partner: PartnerKeys
) -> None:
    s3 = world.client("s3")
    s3.put_object(Bucket=world.bucket, Key="receipts/acme/a.csv.json", Body=b"{}\n")
    before = paramiko_sftp(gw, old_partner)
    try:
        assert before.listdir("/") == []  # no /receipts mapping yet
        with pytest.raises(FileNotFoundError):
            before.listdir("/receipts")
        repair_partner(world.client("transfer"), world.server_id, world.bucket, "acme")
        with pytest.raises(PermissionError, match="mappings changed"):
            before.listdir("/")
    finally:
        before.close()
    after = paramiko_sftp(gw, old_partner)
    try:
        assert after.listdir("/") == ["receipts"]
        assert after.listdir("/receipts") == ["a.csv.json"]
        with pytest.raises(PermissionError):
            after.remove("/receipts/a.csv.json")
    finally:
        after.close()
    assert s3.get_object(Bucket=world.bucket, Key="receipts/acme/a.csv.json")["Body"].read()


def test_the_cli_prints_what_it_changed(
    world: AwsWorld,
    old_partner: PartnerKeys,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "stack"
    state.mkdir()
    (state / "endpoints.json").write_text(
        json.dumps(
            {
                "aws_endpoint_url": world.aws.endpoint_url,
                "region": REGION,
                "resources": {"bucket": world.bucket, "server_id": world.server_id},
            }
        )
    )
    assert main(["partners", "repair", "acme", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == f"partner acme: HomeDirectoryMappings: + /receipts -> /{world.bucket}/receipts/acme"
    )
    assert len(out) == 4
    assert main(["partners", "repair", "acme", "--state-dir", str(state)]) == 0
    assert capsys.readouterr().out == "partner acme: already up to date\n"
    user = world.client("transfer").describe_user(ServerId=world.server_id, UserName="acme")
    mappings = [
        {"Entry": m["Entry"], "Target": m["Target"]} for m in user["User"]["HomeDirectoryMappings"]
    ]
    assert mappings == home_directory_mappings(world.bucket, "acme")
