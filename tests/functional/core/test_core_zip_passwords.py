"""Encrypted zip archives on moto (issue 12, §3): with the feed's ``zip: {password_secret}``
the members are decrypted (ZipCrypto, stdlib ``zipfile``) while they stream and land like any
archive's; a wrong password, a missing secret, an unusable one, or an AES member is FAILED
with the reason and nothing written. Archives are made at test time by Info-ZIP ``zip -P``.

Fanout runs with its own wiring (``lambdas.fanout_wiring``: the zip step reads passwords from the
function's Secrets Manager client), so these tests also hold the deployed function to it."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import FEEDS_YAML, REGION
from support_deliveries import encrypted_zip
from test_core_zip import assert_nothing_written, keys_under, land_members, orders, outcomes
from zip_kit import patch_central

from ingest.adapters.zip_passwords import ZipPasswords
from ingest.domain.feeds import parse_feeds
from ingest.errors import ConfigError

PASSWORD = "c0rrect horse"
ARCHIVE = "inbound/acme/orders/batch.zip"
SECRET = "sftp-ingest/zip/acme"

#: the orders feed with its archives' password in the partner's secret; "keyed" reads it
#: from a JSON key of a shared secret
PASSWORD_FEEDS = (
    FEEDS_YAML.replace(
        '    match: "inbound/{partner}/orders/*.csv"\n',
        '    match: "inbound/{partner}/orders/*.csv"\n'
        '    zip: {password_secret: "sftp-ingest/zip/{partner}"}\n',
    )
    + """
  - name: keyed
    match: "inbound/{partner}/keyed/*.csv"
    format: csv
    zip: {password_secret: "sftp-ingest/zip/shared", password_key: archives}
    key: {pk: "KEYED#{order_id}"}
    fields:
      order_id: {type: string, required: true}
"""
)


@pytest.fixture
def feeds_yaml() -> str:
    return PASSWORD_FEEDS


@pytest.fixture
def secrets(pipeline: Any) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def zipped(pipeline: Any, secrets: Any) -> Any:
    """The pipeline, fanout wired as the function wires itself; the secrets are in moto."""
    return pipeline


def reason(pipeline: Any, key: str = ARCHIVE) -> str:
    entry = pipeline.file(key)
    assert entry.status == "FAILED"
    return entry.reason or ""


def test_the_right_password_expands_the_members_and_their_records_land(zipped, secrets, tmp_path):
    secrets.create_secret(Name=SECRET, SecretString=PASSWORD)
    members = {"a.csv": orders(0, 30), "b.csv": orders(100, 20)}
    assert outcomes(zipped.land(ARCHIVE, encrypted_zip(tmp_path, members, PASSWORD))) == [
        "EXPANDED"
    ]
    keys = ["inbound/acme/orders/a.csv", "inbound/acme/orders/b.csv"]
    assert [zipped.s3.get_object(Bucket=zipped.bucket, Key=k)["Body"].read() for k in keys] == [
        members["a.csv"],
        members["b.csv"],
    ]
    assert land_members(zipped, keys) == ["QUEUED", "QUEUED"]
    zipped.drain(timeout=60)
    assert [zipped.file(k).rows_ok for k in keys] == [30, 20]
    assert zipped.count_items() == 50


def test_a_password_under_a_json_key_of_the_secret_is_used(zipped, secrets, tmp_path):
    secrets.create_secret(
        Name="sftp-ingest/zip/shared", SecretString=json.dumps({"archives": PASSWORD})
    )
    archive = "inbound/acme/keyed/week.zip"
    data = encrypted_zip(tmp_path, {"k.csv": b"order_id\nk1\nk2\n"}, PASSWORD)
    assert outcomes(zipped.land(archive, data)) == ["EXPANDED"]
    assert keys_under(zipped, "inbound/acme/keyed/") == ["inbound/acme/keyed/k.csv", archive]


def test_a_wrong_password_fails_the_archive_with_the_reason_and_nothing_written(
    zipped, secrets, tmp_path
):
    secrets.create_secret(Name=SECRET, SecretString="not the password")
    members = {"a.csv": orders(0, 3), "b.csv": orders(10, 2)}
    assert outcomes(zipped.land(ARCHIVE, encrypted_zip(tmp_path, members, PASSWORD))) == ["FAILED"]
    why = reason(zipped)
    # ZipCrypto checks one byte of the password first ("does not open with the password"); a
    # wrong one that passes it (1 in 256) fails the member's CRC ("... is wrong")
    assert "the password in secret sftp-ingest/zip/acme" in why, why
    assert "does not open" in why or "is wrong" in why, why
    assert_nothing_written(zipped)


def test_a_missing_secret_fails_the_archive_naming_the_secret(zipped, tmp_path):
    data = encrypted_zip(tmp_path, {"a.csv": orders(0, 3)}, PASSWORD)
    assert outcomes(zipped.land(ARCHIVE, data)) == ["FAILED"]
    assert "the password's secret sftp-ingest/zip/acme does not exist" in reason(zipped)
    assert_nothing_written(zipped)


def test_a_secret_without_the_json_key_fails_the_archive(zipped, secrets, tmp_path):
    secrets.create_secret(Name="sftp-ingest/zip/shared", SecretString=json.dumps({"x": "y"}))
    archive = "inbound/acme/keyed/week.zip"
    assert outcomes(zipped.land(archive, encrypted_zip(tmp_path, {"k.csv": b"x"}, "p"))) == [
        "FAILED"
    ]
    assert "secret sftp-ingest/zip/shared has no 'archives' string" in reason(zipped, archive)
    assert_nothing_written(zipped, archive)


def test_an_unencrypted_archive_never_reads_the_secret(zipped, tmp_path):
    # no secret exists: an archive without encrypted members does not need it
    from support_deliveries import build_zip

    assert outcomes(zipped.land(ARCHIVE, build_zip({"a.csv": orders(0, 2)}))) == ["EXPANDED"]


def test_an_aes_encrypted_member_is_refused_by_name(zipped, secrets, tmp_path):
    secrets.create_secret(Name=SECRET, SecretString=PASSWORD)
    data = encrypted_zip(tmp_path, {"a.csv": orders(0, 3)}, PASSWORD)
    aes = patch_central(data, "a.csv", method=99)  # WinZip AES's method number
    assert zipfile.ZipFile(io.BytesIO(aes)).getinfo("a.csv").compress_type == 99
    assert outcomes(zipped.land(ARCHIVE, aes)) == ["FAILED"]
    assert "is AES-encrypted (WinZip AES): only traditional PKWARE" in reason(zipped)
    assert_nothing_written(zipped)


def test_without_a_password_option_an_encrypted_member_is_still_refused(pipeline, tmp_path):
    archive = "inbound/acme/events/x.zip"  # the events feed configures no password
    assert outcomes(pipeline.land(archive, encrypted_zip(tmp_path, {"e.jsonl": b"{}"}, "p"))) == [
        "FAILED"
    ]
    assert "is encrypted (no password is configured)" in reason(pipeline, archive)


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ('{password_secret: "prod/zip"}', "is not a secret under 'sftp-ingest/zip/'"),
        ('{password_secret: "sftp-ingest/zip/{feed}"}', "the only placeholder"),
        ("{password_key: pw}", "'zip.password_key' is a key in the password's secret"),
    ],
)
def test_a_password_secret_outside_what_fanout_may_read_is_a_feeds_error(option, problem):
    feeds = FEEDS_YAML.replace(
        '    match: "inbound/{partner}/orders/*.csv"\n',
        f'    match: "inbound/{{partner}}/orders/*.csv"\n    zip: {option}\n',
    )
    with pytest.raises(ConfigError) as caught:
        parse_feeds(feeds, source="feeds.yaml")
    assert problem in str(caught.value)


def test_a_binary_or_empty_secret_is_refused_with_the_reason(pipeline, secrets, tmp_path: Path):
    passwords = ZipPasswords(secrets)
    secrets.create_secret(Name="sftp-ingest/zip/bin", SecretBinary=b"\x00\x01")
    secrets.create_secret(Name="sftp-ingest/zip/empty", SecretString=json.dumps({"k": ""}))
    with pytest.raises(ConfigError, match="no SecretString"):
        passwords.password("sftp-ingest/zip/bin")
    with pytest.raises(ConfigError, match="empty password"):
        passwords.password("sftp-ingest/zip/empty", "k")
    assert passwords.password("sftp-ingest/zip/none") is None
