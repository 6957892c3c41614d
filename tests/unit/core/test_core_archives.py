"""The archive rules without AWS: member keys (zip slip), the central directory check, the
streaming meter, the envelope lookup and the feeds file's ``zip:`` options."""

from __future__ import annotations

import pytest

from ingest.domain.archives import (
    DEFLATED,
    ArchiveMember,
    MemberMeter,
    ZipLimits,
    member_key,
    plan_members,
)
from ingest.domain.envelopes import EnvelopeKind, envelope_feed, envelope_kind
from ingest.domain.feeds import parse_feeds
from ingest.errors import ArchiveRefusedError, ConfigError

ARCHIVE = "inbound/acme/orders/batch.zip"
MIB = 1024 * 1024


def member(
    name: str,
    size: int = 10,
    compressed: int = 5,
    *,
    method: int = DEFLATED,
    encrypted: bool = False,
) -> ArchiveMember:
    return ArchiveMember(name, size, compressed, method, encrypted)


def test_members_go_to_the_archives_directory_plus_their_path() -> None:
    assert member_key(ARCHIVE, "a.csv") == "inbound/acme/orders/a.csv"
    assert member_key(ARCHIVE, "more/b.csv") == "inbound/acme/orders/more/b.csv"
    assert member_key(ARCHIVE, "more/") == "inbound/acme/orders/more"


@pytest.mark.parametrize(
    "name",
    [
        "../a.csv",
        "x/../../a.csv",
        "x/..",
        "/etc/passwd",
        "C:/a.csv",
        "c:a.csv",
        "a\\b.csv",
        "..\\a.csv",
        "a//b.csv",
        "./a.csv",
        "a\x00b.csv",
        "",
    ],
)
def test_zip_slip_names_are_refused(name: str) -> None:
    with pytest.raises(ArchiveRefusedError) as caught:
        member_key(ARCHIVE, name)
    assert caught.value.rule == "zip_slip"


def test_a_member_whose_key_s3_would_refuse_is_refused() -> None:
    member_key(ARCHIVE, "é" * 400)  # 800 bytes of name: the key still fits
    with pytest.raises(ArchiveRefusedError) as caught:
        member_key(ARCHIVE, "é" * 510)
    assert caught.value.rule == "name"


def test_the_central_directory_is_checked_whole() -> None:
    limits = ZipLimits(max_expanded_bytes=100, max_ratio=10, max_members=3)
    planned = plan_members(ARCHIVE, [member("d/"), member("d/a.csv"), member("b.csv")], limits)
    assert [p.key for p in planned] == ["inbound/acme/orders/d/a.csv", "inbound/acme/orders/b.csv"]
    cases = {
        "encrypted": [member("a.csv"), member("s.csv", encrypted=True)],
        "method": [member("a.csv", method=12)],  # bzip2
        "duplicate": [member("a.csv"), member("a.csv")],
        "nested": [member("inner.ZIP")],
        "max_members": [member(f"{i}.csv") for i in range(4)],
        "max_expanded_bytes": [member("a.csv", 60), member("b.csv", 60)],
        "zip_slip": [member("a.csv"), member("../b.csv")],
    }
    for rule, members in cases.items():
        with pytest.raises(ArchiveRefusedError) as caught:
            plan_members(ARCHIVE, members, limits)
        assert caught.value.rule == rule, rule


def test_the_ratio_is_judged_after_a_mebibyte() -> None:
    limits = ZipLimits(max_ratio=10)
    plan_members(ARCHIVE, [member("small.csv", MIB, 1)], limits)  # 1 MiB from 1 byte: judged later
    with pytest.raises(ArchiveRefusedError) as caught:
        plan_members(ARCHIVE, [member("big.csv", 2 * MIB, 100_000)], limits)
    assert caught.value.rule == "max_ratio"


def test_the_meter_counts_real_bytes_against_declarations_and_limits() -> None:
    meter = MemberMeter(ARCHIVE, ZipLimits(max_expanded_bytes=30, max_ratio=10**6))
    a = member("a.csv", 10)
    meter.add(a, 0, 10)
    meter.finish(a, 10)
    with pytest.raises(ArchiveRefusedError, match="more than the 10 bytes it declares"):
        meter.add(a, 10, 1)
    meter.total = 10
    with pytest.raises(ArchiveRefusedError, match="holds 5 bytes, not the 10"):
        meter.finish(a, 5)
    big = member("b.csv", 100)
    with pytest.raises(ArchiveRefusedError) as caught:
        meter.add(big, 0, 21)
    assert caught.value.rule == "max_expanded_bytes"
    ratio = MemberMeter(ARCHIVE, ZipLimits(max_ratio=10))
    with pytest.raises(ArchiveRefusedError) as caught:
        ratio.add(member("c.csv", 4 * MIB, 1000), 0, 2 * MIB)
    assert caught.value.rule == "max_ratio"


FEEDS = """
feeds:
  - name: orders
    match: "inbound/{partner}/orders/*.csv"
    format: csv
    zip: {max_expanded_bytes: 64MiB, max_ratio: 50, max_members: 10}
    key: {pk: "ORDER#{order_id}"}
    fields: {order_id: string}
  - name: archives
    match: "inbound/{partner}/drops/*.zip"
    format: csv
    key: {pk: "X#{order_id}"}
    fields: {order_id: string}
"""


def test_an_archive_takes_the_options_of_the_feed_owning_its_directory() -> None:
    feeds = parse_feeds(FEEDS)
    owner = envelope_feed(feeds, ARCHIVE)
    assert owner is not None and owner.name == "orders"
    assert owner.zip == ZipLimits(64 * MIB, 50, 10)
    drops = envelope_feed(feeds, "inbound/acme/drops/a.zip")
    assert drops is not None and drops.name == "archives" and drops.zip == ZipLimits()
    assert envelope_feed(feeds, "inbound/acme/other/a.zip") is None
    assert envelope_feed(feeds, "inbound/acme/orders/deeper/a.zip") is None


def test_envelopes_are_found_by_suffix_under_a_partners_prefix() -> None:
    assert envelope_kind(ARCHIVE) is EnvelopeKind.ZIP
    assert envelope_kind("inbound/acme/BATCH.ZIP") is EnvelopeKind.ZIP
    assert envelope_kind("inbound/batch.zip") is None
    assert envelope_kind("outbound/acme/batch.zip") is None
    assert envelope_kind("inbound/acme/orders/a.csv") is None


def test_zip_options_are_validated_with_the_feed() -> None:
    bad = FEEDS.replace("max_ratio: 50", "max_ratio: 0").replace("max_members: 10", "bombs: 1")
    with pytest.raises(ConfigError) as caught:
        parse_feeds(bad)
    text = str(caught.value)
    assert "zip.max_ratio" in text and "unknown zip option 'bombs'" in text


PASSWORD = ZipLimits(password_secret="sftp-ingest/zip/{partner}")


def test_with_a_password_configured_zipcrypto_members_are_planned() -> None:
    planned = plan_members(ARCHIVE, [member("a.csv", encrypted=True), member("b.csv")], PASSWORD)
    assert [p.key for p in planned] == ["inbound/acme/orders/a.csv", "inbound/acme/orders/b.csv"]
    assert [p.member.encrypted for p in planned] == [True, False]
    assert PASSWORD.password_secret_for("acme") == "sftp-ingest/zip/acme"
    assert ZipLimits().password_secret_for("acme") is None


@pytest.mark.parametrize(
    ("encrypted", "expected"),
    [
        (ArchiveMember("s.csv", 10, 5, 99, True), "is AES-encrypted (WinZip AES)"),
        (ArchiveMember("s.csv", 10, 5, DEFLATED, True, True), "uses PKWARE strong encryption"),
    ],
)
def test_members_encrypted_otherwise_than_with_zipcrypto_are_refused_by_name(
    encrypted: ArchiveMember, expected: str
) -> None:
    with pytest.raises(ArchiveRefusedError) as caught:
        plan_members(ARCHIVE, [member("a.csv"), encrypted], PASSWORD)
    assert expected in str(caught.value)
    assert caught.value.rule == "encrypted"
