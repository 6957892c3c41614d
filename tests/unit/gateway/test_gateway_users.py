"""The Transfer user description of a partner (mappings + session policy) and what the
gateway makes of it: ``/`` read-write, ``/receipts`` read-only, from the policy itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.adapters.partners import RECEIPT_WRITES, home_directory_mappings, session_policy
from ingest_local.gateway.paths import (
    ALL_ACTIONS,
    DELETE,
    READ,
    WRITE,
    LogicalRoot,
    PathRefused,
    resolve,
)
from ingest_local.gateway.policy import object_actions
from ingest_local.gateway.users import revoked, user_from_description

BUCKET = "landing-bucket"


def described(name: str = "acme", **overrides: Any) -> dict[str, Any]:
    """``describe_user()['User']`` of a partner as ``ingest partners add`` creates it."""
    return {
        "UserName": name,
        "HomeDirectoryType": "LOGICAL",
        "HomeDirectoryMappings": home_directory_mappings(BUCKET, name),
        "Policy": session_policy(BUCKET),
        "Role": "arn:aws:iam::123456789012:role/users",
        "SshPublicKeys": [],
        **overrides,
    }


def statements() -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(session_policy(BUCKET))["Statement"]}


def test_the_mappings_are_the_home_and_the_receipts() -> None:
    assert home_directory_mappings(BUCKET, "acme") == [
        {"Entry": "/", "Target": f"/{BUCKET}/inbound/acme"},
        {"Entry": "/receipts", "Target": f"/{BUCKET}/receipts/acme"},
    ]


def test_the_session_policy_reads_receipts_and_denies_every_write_there() -> None:
    got = statements()
    assert set(got) == {
        "ListOwnPrefix",
        "ReadWriteOwnObjects",
        "ReadOwnReceipts",
        "ReceiptsAreReadOnly",
    }
    assert got["ListOwnPrefix"]["Condition"]["StringLike"]["s3:prefix"] == [
        "inbound/${transfer:UserName}/*",
        "inbound/${transfer:UserName}",
        "receipts/${transfer:UserName}/*",
        "receipts/${transfer:UserName}",
    ]
    assert got["ReadWriteOwnObjects"]["Resource"] == (
        f"arn:aws:s3:::{BUCKET}/inbound/${{transfer:UserName}}/*"
    )
    read = got["ReadOwnReceipts"]
    assert (read["Effect"], read["Action"]) == ("Allow", ["s3:GetObject", "s3:GetObjectVersion"])
    assert read["Resource"] == f"arn:aws:s3:::{BUCKET}/receipts/${{transfer:UserName}}/*"
    deny = got["ReceiptsAreReadOnly"]
    assert (deny["Effect"], deny["Resource"]) == ("Deny", f"arn:aws:s3:::{BUCKET}/receipts/*")
    assert deny["Action"] == RECEIPT_WRITES
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"):
        assert action in deny["Action"]
    assert "Condition" not in deny  # unconditional: no request can slip past it


def test_the_gateway_serves_receipts_read_only_from_that_description() -> None:
    user = user_from_description(described(), BUCKET)
    assert user.view is not None
    assert user.view.home.root == LogicalRoot(BUCKET, "inbound/acme")
    assert user.view.home.actions == ALL_ACTIONS
    [receipts] = user.view.mounts
    assert (receipts.entry, receipts.root) == (("receipts",), LogicalRoot(BUCKET, "receipts/acme"))
    assert receipts.actions == {READ}

    namespace = user.namespace
    assert (
        resolve(namespace, "/receipts/orders/a.csv.json").key == "receipts/acme/orders/a.csv.json"
    )
    for trick in ("/receipts/../receipts/x", "//receipts/x", "/receipts/./x", "receipts//x"):
        target = resolve(namespace, trick)
        assert target.key == "receipts/acme/x", trick
        assert target.allows(READ) and not target.allows(WRITE) and not target.allows(DELETE)
    assert resolve(namespace, "/receipts/..").key == "inbound/acme"
    assert resolve(namespace, "/receiptsX/a").key == "inbound/acme/receiptsX/a"
    for escape in ("/receipts/../../receipts/globex", f"/{BUCKET}/receipts/globex", "/inbound/x"):
        with pytest.raises(PathRefused):
            resolve(namespace, escape)


def test_the_policy_confines_even_a_misconfigured_mapping() -> None:
    """acme's /receipts pointed at globex's prefix: the policy allows nothing there."""
    mappings = [
        {"Entry": "/", "Target": f"/{BUCKET}/inbound/acme"},
        {"Entry": "/receipts", "Target": f"/{BUCKET}/receipts/globex"},
    ]
    user = user_from_description(described(HomeDirectoryMappings=mappings), BUCKET)
    assert user.view is not None
    assert user.view.mounts[0].actions == frozenset()


def test_policy_evaluation() -> None:
    root = LogicalRoot(BUCKET, "inbound/acme")

    def actions(*statements: dict[str, Any]) -> frozenset[str]:
        doc = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
        return object_actions(doc, root, username="acme", home_bucket=BUCKET)

    everything = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
    assert object_actions(None, root, username="acme", home_bucket=BUCKET) == ALL_ACTIONS
    assert actions(everything) == ALL_ACTIONS
    assert actions() == frozenset()  # nothing allowed is denied
    assert actions({**everything, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}) == set()
    deny_put = {"Effect": "Deny", "Action": "S3:Put*", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    assert actions(everything, deny_put) == {READ, DELETE}
    unsure = {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*", "Condition": {}}
    assert actions(everything, unsure) == frozenset()  # a Deny it cannot evaluate: denied
    one_char = {
        "Effect": "Allow",
        "Action": "s3:GetObjec?",
        "Resource": "arn:aws:s3:::*/inbound/acm?/*",
    }
    assert actions(one_char) == {READ}
    variable = {
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::${transfer:HomeBucket}/inbound/${transfer:UserName}/*"],
    }
    assert actions(variable) == {READ}
    with pytest.raises(ValueError, match="not JSON"):
        object_actions("{nope", root, username="acme", home_bucket=BUCKET)


@pytest.mark.parametrize(
    ("mappings", "why"),
    [
        ([{"Entry": "/receipts", "Target": f"/{BUCKET}/receipts/acme"}], "exactly one"),
        (
            [
                {"Entry": "/", "Target": f"/{BUCKET}/inbound/acme"},
                {"Entry": "/", "Target": f"/{BUCKET}/inbound/other"},
            ],
            "exactly one",
        ),
        (
            [
                {"Entry": "/", "Target": f"/{BUCKET}/inbound/acme"},
                {"Entry": "/receipts", "Target": "/other-bucket/receipts/acme"},
            ],
            "must map to a prefix",
        ),
        (
            [
                {"Entry": "/", "Target": f"/{BUCKET}/inbound/acme"},
                {"Entry": "/r/../x", "Target": f"/{BUCKET}/receipts/acme"},
            ],
            "not usable",
        ),
    ],
)
def test_descriptions_the_gateway_will_not_serve(mappings: list[dict[str, str]], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        user_from_description(described(HomeDirectoryMappings=mappings), BUCKET)


def test_a_changed_mapping_revokes_live_sessions() -> None:
    before = user_from_description(
        described(HomeDirectoryMappings=home_directory_mappings(BUCKET, "acme")[:1]), BUCKET
    )
    after = user_from_description(described(), BUCKET)
    assert revoked(before, None, after) == "the user's home directory or its mappings changed"
    assert revoked(after, None, user_from_description(described(), BUCKET)) == ""


@given(
    st.lists(
        st.sampled_from(["receipts", "..", ".", "", ".history", "globex", "inbound", "x.json"]),
        max_size=10,
    ),
    st.booleans(),
)
def test_no_path_writes_under_receipts_or_leaves_the_partners_prefixes(
    parts: list[str], absolute: bool
) -> None:
    namespace = user_from_description(described(), BUCKET).namespace
    path = ("/" if absolute else "") + "/".join(parts)
    try:
        target = resolve(namespace, path)
    except PathRefused:
        return
    home, receipts = "inbound/acme", "receipts/acme"
    assert any(target.key == p or target.key.startswith(p + "/") for p in (home, receipts))
    if target.key.startswith("receipts/"):
        assert target.allows(READ) and not target.allows(WRITE) and not target.allows(DELETE)
    else:
        assert target.allows(WRITE) and target.allows(DELETE)
    assert resolve(namespace, target.logical) == target
