"""Sidecar and marker names, the digest a sidecar declares, the reasons, the feed options."""

from __future__ import annotations

import pytest

from ingest.domain.digests import Digest, from_s3_checksum
from ingest.domain.feed_types import WaitFor, parse_duration
from ingest.domain.sidecars import (
    SidecarKind,
    SidecarNote,
    confirms,
    declared_digest,
    parse_sidecar,
    subjects_of,
    timeout_reason,
)

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(
    ("key", "kind", "subject"),
    [
        ("inbound/acme/p/day1.csv.sha256", SidecarKind.SHA256, "inbound/acme/p/day1.csv"),
        ("inbound/acme/p/day1.csv.MD5", SidecarKind.MD5, "inbound/acme/p/day1.csv"),
        ("inbound/acme/p/day1.done", SidecarKind.DONE, "inbound/acme/p/day1"),
        ("inbound/acme/p/day1.csv.done", SidecarKind.DONE, "inbound/acme/p/day1.csv"),
    ],
)
def test_sidecars_are_named_by_their_suffix(key: str, kind: SidecarKind, subject: str) -> None:
    sidecar = parse_sidecar(key)
    assert sidecar is not None
    assert (sidecar.kind, sidecar.subject) == (kind, subject)


@pytest.mark.parametrize(
    "key", ["inbound/acme/p/day1.csv", "config/x.sha256", "inbound/acme/.done", "x.done"]
)
def test_other_keys_are_not_sidecars(key: str) -> None:
    assert parse_sidecar(key) is None


def test_a_done_marker_confirms_by_key_or_stem_and_only_done_feeds() -> None:
    assert subjects_of("inbound/a/p/day1.csv") == ("inbound/a/p/day1.csv", "inbound/a/p/day1")
    marker = SidecarNote("inbound/a/p/day1", SidecarKind.DONE, "inbound/a/p/day1.done", "e")
    assert confirms(marker, "inbound/a/p/day1.csv", WaitFor.DONE)
    assert not confirms(marker, "inbound/a/p/day1.csv", WaitFor.CHECKSUM)
    assert not confirms(marker, "inbound/a/p/day10.csv", WaitFor.DONE)
    checksum = SidecarNote("inbound/a/p/day1.csv", SidecarKind.SHA256, "….sha256", "e", SHA)
    assert confirms(checksum, "inbound/a/p/day1.csv", WaitFor.CHECKSUM)
    assert not confirms(checksum, "inbound/a/p/day1.csv", WaitFor.DONE)


@pytest.mark.parametrize(
    ("text", "declared"),
    [
        (f"{SHA}  day1.csv\n", SHA),
        (f"{SHA.upper()}\n", SHA),
        (f"SHA256 (day1.csv) = {SHA}\n", SHA),
    ],
)
def test_the_first_hex_token_is_the_digest(text: str, declared: str) -> None:
    assert declared_digest(SidecarKind.SHA256, text) == (declared, None)


def test_a_sidecar_without_a_digest_of_its_length_says_so() -> None:
    assert declared_digest(SidecarKind.SHA256, "see attached") == (
        None,
        "it holds no hex sha256 digest",
    )
    _, problem = declared_digest(SidecarKind.MD5, f"{SHA}  day1.csv")
    assert problem == "its first hex token has 64 digits, not 32 (md5)"


def test_the_timeout_reason_names_the_wait_and_what_was_expected() -> None:
    reason = timeout_reason(WaitFor.CHECKSUM, 86400, "inbound/a/p/d.csv")
    assert reason == (
        "no checksum/done marker after 24 h "
        "(expected inbound/a/p/d.csv.sha256 or inbound/a/p/d.csv.md5)"
    )
    assert "inbound/a/p/d.done" in timeout_reason(WaitFor.DONE, 5400, "inbound/a/p/d.csv")
    assert "after 90 min" in timeout_reason(WaitFor.DONE, 5400, "inbound/a/p/d.csv")


def test_durations_and_s3_checksums() -> None:
    assert [parse_duration(v) for v in (45, "90m", "24h", "30d", "1w")] == [
        45,
        5400,
        86400,
        2592000,
        604800,
    ]
    for bad in ("24 hours", True, 0, "-1h"):
        with pytest.raises(ValueError, match=r"duration|at least"):
            parse_duration(bad)
    # S3's base64 SHA-256 of b"test" as hex, equal to hashlib's
    assert from_s3_checksum("sha256", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=") == Digest(
        "sha256", SHA
    )
    assert str(Digest.parse("crc64nvme:abc=")) == "crc64nvme:abc="
