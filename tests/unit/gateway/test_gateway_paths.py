"""The one path-mapping function: properties and the concrete refusals."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_local.gateway.paths import REFUSED_CATEGORIES, LogicalRoot, PathRefused, resolve

ROOT = LogicalRoot("landing-bucket", "inbound/acme")


@given(
    st.lists(st.sampled_from(["a", "b", "..", ".", "", "dir", "é", "x.csv"]), max_size=12),
    st.booleans(),
)
def test_resolved_keys_never_leave_the_root(parts: list[str], absolute: bool) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    try:
        resolved = resolve(ROOT, path)
    except PathRefused as exc:
        assert exc.reason
        return
    assert resolved.key == "inbound/acme" or resolved.key.startswith("inbound/acme/")
    assert ".." not in resolved.parts
    assert resolve(ROOT, resolved.logical) == resolved


@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_mapped_inside_or_refused(raw: bytes) -> None:
    try:
        resolved = resolve(ROOT, raw)
    except PathRefused:
        return
    assert resolved.key.startswith("inbound/acme")
    assert not any(unicodedata.category(ch) in REFUSED_CATEGORIES for ch in resolved.key)


@given(st.text(max_size=24))
def test_no_invisible_or_control_character_gets_into_a_key(text: str) -> None:
    try:
        resolved = resolve(ROOT, text)
    except PathRefused:
        return
    assert not any(unicodedata.category(ch) in REFUSED_CATEGORIES for ch in resolved.key)


@pytest.mark.parametrize(
    "char",
    [
        "\u0085",  # NEXT LINE (C1 control)
        "\u2028",  # LINE SEPARATOR
        "\u2029",  # PARAGRAPH SEPARATOR
        "\u202e",  # RIGHT-TO-LEFT OVERRIDE: "invoice\u202efdp.exe" displays as "invoiceexe.pdf"
        "\u200b",  # ZERO WIDTH SPACE
        "\u200c",  # ZERO WIDTH NON-JOINER
        "\u200d",  # ZERO WIDTH JOINER
        "\u2060",  # WORD JOINER
        "\ufeff",  # ZERO WIDTH NO-BREAK SPACE (BOM)
        "\ue000",  # private use
        "\U000e0001",  # LANGUAGE TAG (format)
        "\u0378",  # unassigned
    ],
)
def test_invisible_and_separator_characters_are_refused(char: str) -> None:
    with pytest.raises(PathRefused) as info:
        resolve(ROOT, f"orders/a{char}b.csv".encode())
    assert "control, invisible or unassigned" in info.value.reason
    assert f"U+{ord(char):04X}" in info.value.reason


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/", "inbound/acme"),
        ("", "inbound/acme"),
        (".", "inbound/acme"),
        ("orders/a.csv", "inbound/acme/orders/a.csv"),
        ("/orders//./a.csv", "inbound/acme/orders/a.csv"),
        ("orders/x/../a.csv", "inbound/acme/orders/a.csv"),
        ("/ünïcode.csv", "inbound/acme/ünïcode.csv"),
        ("/e\u0301t\u00e9/\u4e2d\u6587.csv", "inbound/acme/e\u0301t\u00e9/\u4e2d\u6587.csv"),
        ("/\U0001f4e6 box.csv", "inbound/acme/\U0001f4e6 box.csv"),
    ],
)
def test_valid_paths(path: str, key: str) -> None:
    assert resolve(ROOT, path).key == key


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (b"..", "climbs above"),
        (b"/../other/x", "climbs above"),
        (b"a/../../x", "climbs above"),
        (b"a\x00b", "control"),
        (b"a\nb", "control"),
        (b"a\\b", "backslash"),
        (b"\xff\xfe", "UTF-8"),
        (b"/landing-bucket/inbound/other/x", "physical"),
        (b"/inbound/other/x", "physical"),
        (b"n" * 256, "255"),
        (b"/".join([b"d" * 250] * 5), "1024"),
        (b"a/" * 3000, "4096"),
    ],
)
def test_refusals(path: bytes, reason: str) -> None:
    with pytest.raises(PathRefused) as info:
        resolve(ROOT, path)
    assert reason in info.value.reason


def test_views_of_a_path() -> None:
    r = resolve(ROOT, "/orders/a.csv")
    assert r.logical == "/orders/a.csv"
    assert r.physical == "/landing-bucket/inbound/acme/orders/a.csv"
    assert r.dir_prefix == "inbound/acme/orders/a.csv/"
    assert r.name == "a.csv"
    assert resolve(ROOT, "/").is_root
