"""Zip archives refused on moto: zip slip, encrypted members, bombs (honest and lying), a
feed's zip: limits, nested archives and duplicate names, not a zip. Each is FAILED with its
reason, and nothing is written: no member, no upload left open, nothing queued."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import pytest
from test_core_zip import (  # noqa: F401  (feeds_yaml: the fixture with the zip feeds)
    ARCHIVE,
    assert_nothing_written,
    feeds_yaml,
    keys_under,
    orders,
    outcomes,
)
from zip_kit import MIB, build_zip, patch_central, zeros_bomb


@pytest.mark.parametrize(
    "name",
    ["../evil.csv", "ok/../../evil.csv", "/etc/evil.csv", "C:/evil.csv", "c:evil.csv", "a\\b.csv"],
)
def test_zip_slip_is_refused_with_nothing_written(pipeline, name):
    data = build_zip({"good.csv": orders(0, 2), name: orders(10, 2), "later.csv": orders(20, 1)})
    assert outcomes(pipeline.land(ARCHIVE, data)) == ["FAILED"]
    entry = pipeline.file(ARCHIVE)
    assert entry.status == "FAILED"
    assert "zip slip" in (entry.reason or "") and repr(name) in (entry.reason or "")
    assert_nothing_written(pipeline)


def test_an_encrypted_member_is_refused_without_a_password(pipeline):
    data = patch_central(
        build_zip({"a.csv": orders(0, 2), "secret.csv": orders(5, 2)}), "secret.csv", flags=0x1
    )
    assert outcomes(pipeline.land(ARCHIVE, data)) == ["FAILED"]
    reason = pipeline.file(ARCHIVE).reason or ""
    assert "'secret.csv' is encrypted" in reason
    assert_nothing_written(pipeline)


def test_a_ten_gigabyte_bomb_is_refused_from_its_directory_in_bounded_memory(pipeline):
    data = zeros_bomb(10 * 1024**3)
    assert len(data) < 16 * MIB
    resp = pipeline.put(ARCHIVE, data)
    tracemalloc.start()
    try:
        result = pipeline.notify(
            ARCHIVE, size=len(data), etag=resp["ETag"], version=resp["VersionId"]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcomes(result) == ["FAILED"]
    assert "max_expanded_bytes" in (pipeline.file(ARCHIVE).reason or "")
    assert peak < 64 * MIB  # the archive is ~10 MB, its expansion 10 GB: nothing is inflated
    assert_nothing_written(pipeline)


def test_a_member_lying_about_its_size_is_refused_in_bounded_memory(pipeline):
    # 256 MiB of zeros that the central directory says are 512 KiB: zipfile stops at the
    # declared size and its CRC does not match; nothing is written, memory stays bounded
    data = patch_central(
        zeros_bomb(256 * MIB, name="big.csv", block_size=8 * MIB), "big.csv", size=512 * 1024
    )
    resp = pipeline.put(ARCHIVE, data)
    tracemalloc.start()
    try:
        result = pipeline.notify(
            ARCHIVE, size=len(data), etag=resp["ETag"], version=resp["VersionId"]
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcomes(result) == ["FAILED"]
    assert "'big.csv' cannot be read" in (pipeline.file(ARCHIVE).reason or "")
    assert peak < 96 * MIB
    assert_nothing_written(pipeline)


def test_a_member_shorter_than_it_declares_is_refused_and_its_upload_aborted(pipeline):
    # the first member streams completely (its upload is begun, then aborted)
    data = build_zip({"a.csv": orders(0, 200_000), "short.csv": orders(0, 100)})
    real = len(orders(0, 100))
    data = patch_central(data, "short.csv", size=real + 10)
    assert outcomes(pipeline.land(ARCHIVE, data)) == ["FAILED"]
    reason = pipeline.file(ARCHIVE).reason or ""
    assert f"'short.csv' holds {real} bytes, not the {real + 10} it declares" in reason
    assert_nothing_written(pipeline)


def test_a_feeds_zip_limits_apply_to_the_archives_in_its_directory(pipeline):
    archive = "inbound/acme/small/three.zip"
    three = build_zip({f"{i}.csv": b"order_id\n1\n" for i in range(3)})
    assert outcomes(pipeline.land(archive, three)) == ["FAILED"]
    assert "more than 2 members (max_members)" in (pipeline.file(archive).reason or "")
    assert_nothing_written(pipeline, archive)

    archive = "inbound/acme/small/packed.zip"
    packed = build_zip({"a.csv": b"order_id\n" + b"1\n" * 600_000})  # 1.2 MB, ratio > 50
    assert outcomes(pipeline.land(archive, packed)) == ["FAILED"]
    assert "(max_ratio)" in (pipeline.file(archive).reason or "")

    archive = "inbound/acme/small/large.zip"
    large = build_zip({"a.csv": b"order_id\n" + b"1234567\n" * 300_000}, compression=0)
    assert outcomes(pipeline.land(archive, large)) == ["FAILED"]
    assert "(max_expanded_bytes)" in (pipeline.file(archive).reason or "")
    # the defaults elsewhere: the same three members are fine
    assert outcomes(pipeline.land("inbound/acme/other/three.zip", three)) == ["EXPANDED"]


def test_nested_archives_and_duplicate_names_are_refused(pipeline):
    inner = build_zip({"a.csv": orders(0, 1)})
    assert outcomes(pipeline.land(ARCHIVE, build_zip({"inner.zip": inner}))) == ["FAILED"]
    assert "archives are not nested" in (pipeline.file(ARCHIVE).reason or "")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.csv", orders(0, 1))
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("a.csv", orders(5, 1))
    second = "inbound/acme/orders/twice.zip"
    assert outcomes(pipeline.land(second, out.getvalue())) == ["FAILED"]
    assert "appears twice" in (pipeline.file(second).reason or "")
    assert keys_under(pipeline, "inbound/acme/orders/") == [ARCHIVE, second]


def test_not_a_zip_is_refused(pipeline):
    assert outcomes(pipeline.land(ARCHIVE, b"this is not a zip archive")) == ["FAILED"]
    assert "not a readable zip archive" in (pipeline.file(ARCHIVE).reason or "")
