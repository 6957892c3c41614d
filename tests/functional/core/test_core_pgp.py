"""PGP files end to end on moto: decrypted next to themselves with the partner's key from
Secrets Manager (Transfer Family's workflow secrets), the plaintext ingested by its own event,
chains with gzip and zip, and every refusal FAILED with nothing written (issue 12, §4, §6).
Keys are generated here, at test time; none is committed."""

from __future__ import annotations

import gzip
import json
import subprocess
from typing import Any

import pysequoia
import pytest
from conftest import FEEDS_YAML
from pysequoia.packet import PacketPile, Tag
from support_deliveries import build_zip, encrypt, gpg_key_with_passphrase
from test_core_zip import keys_under, land_members, orders, outcomes
from test_operator_cli import ingest  # noqa: F401  (the fixture: the CLI against this stack)

from ingest.adapters.ledger_envelopes import EnvelopeLedger

SERVER_ID = "s-0123456789abcdef0"
FILE = "inbound/acme/orders/day1.csv.pgp"
PLAIN = "inbound/acme/orders/day1.csv"

PGP_FEEDS = (
    FEEDS_YAML
    + """
  - name: batches
    match: "inbound/{partner}/batches/**.csv"
    format: csv
    key: {pk: "BATCH#{order_id}", sk: "PARTNER#{partner}"}
    fields:
      order_id: {type: string, required: true}
      amount: {type: decimal, required: true}
"""
)


@pytest.fixture
def feeds_yaml() -> str:
    return PGP_FEEDS


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    """Keys made for this run: RSA, Curve25519 (passphrase-protected), another partner's
    signing key, and one nobody configured."""
    return {
        "rsa": pysequoia.Tsk.generate(
            "acme <acme@example.com>", cipher_suite=pysequoia.CipherSuite.RSA2k
        ),
        "ecc": pysequoia.Tsk.generate(
            "default <ops@example.com>", cipher_suite=pysequoia.CipherSuite.Cv25519
        ),
        "signer": pysequoia.Tsk.generate("acme signing <sign@example.com>"),
        "stranger": pysequoia.Tsk.generate("someone else <x@example.com>"),
    }


@pytest.fixture(scope="module")
def gpg_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One passphrase-protected key made by gpg for the module ("s3cret")."""
    return gpg_key_with_passphrase(tmp_path_factory.mktemp("gpg"), "s3cret")


def encryption_key_id(tsk: Any) -> str:
    """The key id of a certificate's encryption subkey, read by pysequoia's packet parser."""
    cert = tsk.extract_certificate()
    ids, subkey = [], None
    for packet in PacketPile.from_bytes(bytes(cert)):
        if packet.tag == Tag.PublicSubkey:
            subkey = packet.key_id
        elif packet.tag == Tag.Signature and subkey is not None:  # the subkey's binding
            flags = packet.key_flags
            if flags is not None and flags.transport_encryption:
                ids.append(str(subkey).upper())
            subkey = None
    assert len(ids) == 1
    return ids[0]


def put_secret(pipeline: Any, partner: str, doc: dict[str, str]) -> None:
    """The secret as Transfer Family's workflows keep it: a JSON SecretString."""
    from boto3 import client

    secrets = client("secretsmanager", region_name=pipeline.s3.meta.region_name)
    secrets.create_secret(Name=f"aws/transfer/{SERVER_ID}/{partner}", SecretString=json.dumps(doc))


@pytest.fixture
def pgp(pipeline: Any) -> Any:
    pipeline.setenv("TRANSFER_SERVER_ID", SERVER_ID)
    return pipeline


def assert_nothing_written(pipeline: Any, key: str = FILE) -> None:
    directory = key.rsplit("/", 1)[0] + "/"
    assert keys_under(pipeline, directory) == [key]
    assert pipeline.s3.list_multipart_uploads(Bucket=pipeline.bucket).get("Uploads", []) == []
    assert pipeline.queue_depth() == 0


def test_an_rsa_encrypted_file_is_decrypted_next_to_itself_and_its_records_land(pgp, keys):
    put_secret(pgp, "acme", {"PGPPrivateKey": str(keys["rsa"]), "PGPPassphrase": ""})
    plaintext = orders(0, 7)
    assert outcomes(pgp.land(FILE, encrypt(plaintext, keys["rsa"]))) == ["DECRYPTED"]
    entry = pgp.file(FILE)
    assert (entry.status, entry.feed, entry.output_count, entry.outputs) == (
        "DECRYPTED",
        "orders",
        1,
        [PLAIN],
    )
    assert pgp.s3.get_object(Bucket=pgp.bucket, Key=PLAIN)["Body"].read() == plaintext
    assert land_members(pgp, [PLAIN]) == ["QUEUED"]
    pgp.drain(timeout=60)
    assert (pgp.file(PLAIN).status, pgp.file(PLAIN).rows_ok) == ("PROCESSED", 7)
    assert pgp.count_items() == 7
    links = EnvelopeLedger(pgp.ledger).envelopes_of(PLAIN)
    assert [(link["envelope"], link["step"]) for link in links] == [(FILE, "DECRYPTED")]


def test_a_passphrase_protected_gpg_key_in_the_default_secret_decrypts_an_armored_file(
    pgp, gpg_key
):
    private = gpg_key
    put_secret(pgp, "@pgp-default", {"PGPPrivateKey": private, "PGPPassphrase": "s3cret"})
    cert = pysequoia.Cert.from_bytes(private.encode())
    plaintext = orders(50, 3)
    message = pysequoia.encrypt(plaintext, [cert])  # armored
    key = "inbound/acme/orders/day2.csv.asc"
    assert outcomes(pgp.land(key, message)) == ["DECRYPTED"]  # acme has no secret of its own
    assert pgp.file(key).outputs == ["inbound/acme/orders/day2.csv"]
    assert land_members(pgp, ["inbound/acme/orders/day2.csv"]) == ["QUEUED"]
    pgp.drain(timeout=60)
    assert pgp.file("inbound/acme/orders/day2.csv").rows_ok == 3


def test_a_wrong_passphrase_fails_the_file(pgp, gpg_key):
    private = gpg_key
    put_secret(pgp, "acme", {"PGPPrivateKey": private, "PGPPassphrase": "wrong"})
    message = pysequoia.encrypt(orders(0, 1), [pysequoia.Cert.from_bytes(private.encode())])
    assert outcomes(pgp.land(FILE, message)) == ["FAILED"]
    entry = pgp.file(FILE)
    assert entry.status == "FAILED"
    assert f"aws/transfer/{SERVER_ID}/acme cannot be used" in (entry.reason or "")
    assert_nothing_written(pgp)


def test_an_ecc_key_in_the_partners_secret_wins_over_the_default(pgp, keys):
    put_secret(pgp, "acme", {"PGPPrivateKey": str(keys["ecc"]), "PGPPassphrase": ""})
    put_secret(pgp, "@pgp-default", {"PGPPrivateKey": str(keys["stranger"])})
    key = "inbound/acme/orders/day3.csv.gpg"
    assert outcomes(pgp.land(key, encrypt(orders(0, 2), keys["ecc"]))) == ["DECRYPTED"]
    body = pgp.s3.get_object(Bucket=pgp.bucket, Key="inbound/acme/orders/day3.csv")["Body"]
    assert body.read() == orders(0, 2)


def test_a_wrong_key_fails_the_file_naming_the_key_id_it_was_encrypted_to(pgp, keys):
    put_secret(pgp, "acme", {"PGPPrivateKey": str(keys["stranger"]), "PGPPassphrase": ""})
    assert outcomes(pgp.land(FILE, encrypt(orders(0, 3), keys["rsa"]))) == ["FAILED"]
    entry = pgp.file(FILE)
    reason = entry.reason or ""
    assert entry.status == "FAILED"
    assert encryption_key_id(keys["rsa"]) in reason
    assert f"aws/transfer/{SERVER_ID}/acme" in reason
    assert keys["stranger"].extract_certificate().fingerprint.upper() in reason
    assert_nothing_written(pgp)


def test_a_missing_secret_fails_the_file_naming_both_secrets_and_the_key_id(pgp, keys):
    assert outcomes(pgp.land(FILE, encrypt(orders(0, 3), keys["rsa"]))) == ["FAILED"]
    reason = pgp.file(FILE).reason or ""
    assert f"aws/transfer/{SERVER_ID}/acme" in reason
    assert f"aws/transfer/{SERVER_ID}/@pgp-default" in reason
    assert encryption_key_id(keys["rsa"]) in reason
    assert_nothing_written(pgp)


def test_a_corrupt_message_fails_the_file_with_nothing_written(pgp, keys):
    put_secret(pgp, "acme", {"PGPPrivateKey": str(keys["rsa"]), "PGPPassphrase": ""})
    message = bytearray(encrypt(orders(0, 2000), keys["rsa"]))
    message[len(message) // 2] ^= 0xFF  # inside the encrypted data: the integrity check fails
    assert outcomes(pgp.land(FILE, bytes(message))) == ["FAILED"]
    reason = pgp.file(FILE).reason or ""
    assert "cannot be decrypted" in reason and encryption_key_id(keys["rsa"]) in reason
    assert_nothing_written(pgp)
    truncated = encrypt(orders(0, 2000), keys["rsa"])[:-40]
    other = "inbound/acme/orders/cut.csv.pgp"
    assert outcomes(pgp.land(other, truncated)) == ["FAILED"]
    assert pgp.file(other).status == "FAILED"
    assert keys_under(pgp, "inbound/acme/orders/") == sorted([FILE, other])


def test_signed_files_decrypt_and_a_configured_public_key_must_verify_the_signature(pgp, keys):
    partner_cert = str(keys["signer"].extract_certificate())
    put_secret(
        pgp,
        "acme",
        {"PGPPrivateKey": str(keys["rsa"]), "PGPPassphrase": "", "PGPPublicKey": partner_cert},
    )
    good = encrypt(orders(0, 4), keys["rsa"], signer=keys["signer"].signer())
    assert outcomes(pgp.land("inbound/acme/orders/good.csv.pgp", good)) == ["DECRYPTED"]
    forged = encrypt(orders(0, 4), keys["rsa"], signer=keys["stranger"].signer())
    assert outcomes(pgp.land(FILE, forged)) == ["FAILED"]
    reason = pgp.file(FILE).reason or ""
    assert "signature does not verify" in reason and "PGPPublicKey" in reason
    assert keys_under(pgp, "inbound/acme/orders/") == sorted(
        [FILE, "inbound/acme/orders/good.csv", "inbound/acme/orders/good.csv.pgp"]
    )


def test_a_signed_file_decrypts_when_no_public_key_is_configured(pgp, keys):
    put_secret(pgp, "acme", {"PGPPrivateKey": str(keys["rsa"]), "PGPPassphrase": ""})
    signed = encrypt(orders(0, 4), keys["rsa"], signer=keys["stranger"].signer())
    assert outcomes(pgp.land(FILE, signed)) == ["DECRYPTED"]
    assert pgp.s3.get_object(Bucket=pgp.bucket, Key=PLAIN)["Body"].read() == orders(0, 4)


def test_an_encrypted_gzip_decrypts_then_gunzips_while_parsing(pgp, keys):
    put_secret(pgp, "acme", {"PGPPrivateKey": str(keys["rsa"]), "PGPPassphrase": ""})
    key = "inbound/acme/orders/day4.csv.gz.pgp"
    assert outcomes(pgp.land(key, encrypt(gzip.compress(orders(0, 11)), keys["rsa"]))) == [
        "DECRYPTED"
    ]
    assert land_members(pgp, ["inbound/acme/orders/day4.csv.gz"]) == ["QUEUED"]
    pgp.drain(timeout=60)
    gz = pgp.file("inbound/acme/orders/day4.csv.gz")
    assert (gz.status, gz.rows_ok) == ("PROCESSED", 11)
    assert pgp.count_items() == 11


def test_an_encrypted_zip_decrypts_then_expands_one_ledger_entry_per_step(pgp, keys):
    put_secret(pgp, "@pgp-default", {"PGPPrivateKey": str(keys["ecc"]), "PGPPassphrase": ""})
    archive = build_zip({"a.csv": orders(0, 3), "more/b.csv": orders(100, 5)})
    key = "inbound/acme/batches/week.zip.pgp"
    assert outcomes(pgp.land(key, encrypt(archive, keys["ecc"]))) == ["DECRYPTED"]
    assert land_members(pgp, ["inbound/acme/batches/week.zip"]) == ["EXPANDED"]
    members = ["inbound/acme/batches/a.csv", "inbound/acme/batches/more/b.csv"]
    assert land_members(pgp, members) == ["QUEUED", "QUEUED"]
    pgp.drain(timeout=60)
    assert [pgp.file(m).rows_ok for m in members] == [3, 5]
    assert pgp.count_items() == 8
    chain = [(key, "DECRYPTED"), ("inbound/acme/batches/week.zip", "EXPANDED")]
    assert [(k, pgp.file(k).status) for k, _ in chain] == chain
    ledger = EnvelopeLedger(pgp.ledger)
    assert [link["envelope"] for link in ledger.envelopes_of("inbound/acme/batches/week.zip")] == [
        key
    ]
    # a member's story goes back to what the partner sent: the .zip.pgp, then the .zip
    assert [(link["envelope"], link["step"]) for link in ledger.envelopes_of(members[0])] == [
        (key, "DECRYPTED"),
        ("inbound/acme/batches/week.zip", "EXPANDED"),
    ]


def test_without_a_transfer_server_id_an_encrypted_file_fails_with_the_reason(pipeline, keys):
    pipeline.setenv("TRANSFER_SERVER_ID", "")
    assert outcomes(pipeline.land(FILE, encrypt(orders(0, 1), keys["rsa"]))) == ["FAILED"]
    assert "TRANSFER_SERVER_ID" in (pipeline.file(FILE).reason or "")
    assert_nothing_written(pipeline)


def test_set_pgp_key_stores_the_workflow_secret_that_decrypts_the_partners_files(
    pgp,
    gpg_key,
    ingest,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    private = gpg_key
    key_file = tmp_path / "acme.asc"
    key_file.write_text(private)
    monkeypatch.setenv("ACME_PGP_PASSPHRASE", "s3cret")
    run = ingest(
        "partners", "set-pgp-key", "acme", "--private-key", str(key_file),
        "--passphrase-env", "ACME_PGP_PASSPHRASE", "--server-id", SERVER_ID,
    )  # fmt: skip
    assert run.code == 0, run.err
    name = f"aws/transfer/{SERVER_ID}/acme"
    assert name in run.out
    from boto3 import client

    secrets = client("secretsmanager", region_name=pgp.s3.meta.region_name)
    stored = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
    assert stored == {"PGPPrivateKey": private, "PGPPassphrase": "s3cret"}
    message = pysequoia.encrypt(orders(0, 2), [pysequoia.Cert.from_bytes(private.encode())])
    assert outcomes(pgp.land(FILE, message)) == ["DECRYPTED"]

    monkeypatch.setenv("ACME_PGP_PASSPHRASE", "wrong")  # refused before anything is stored
    again = ingest(
        "partners", "set-pgp-key", "acme", "--private-key", str(key_file),
        "--passphrase-env", "ACME_PGP_PASSPHRASE", "--server-id", SERVER_ID,
    )  # fmt: skip
    assert again.code != 0
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]) == stored
    updated = ingest(
        "partners", "set-pgp-key", "acme", "--private-key", str(key_file),
        "--public-key", str(key_file), "--server-id", SERVER_ID,
    )  # fmt: skip
    assert updated.code != 0  # a passphrase-protected key without its passphrase


def test_with_a_public_key_configured_an_unsigned_file_fails(pgp, keys):
    partner_cert = str(keys["signer"].extract_certificate())
    put_secret(pgp, "acme", {"PGPPrivateKey": str(keys["rsa"]), "PGPPublicKey": partner_cert})
    assert outcomes(pgp.land(FILE, encrypt(orders(0, 4), keys["rsa"]))) == ["FAILED"]
    assert "signature does not verify" in (pgp.file(FILE).reason or "")
    assert_nothing_written(pgp)


def test_a_message_made_by_gpg_decrypts_and_a_wrong_key_names_gpgs_key_id(
    pgp, keys, tmp_path_factory
):
    """Partners mostly encrypt with gpg (v3 PKESK packets), not Sequoia (v6)."""
    home = tmp_path_factory.mktemp("partner-gpg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--trust-model", "always"]
    subprocess.run([*gpg, "--import"], input=str(keys["ecc"].extract_certificate()).encode(),
                   check=True, capture_output=True)  # fmt: skip
    plain = home / "orders.csv"
    plain.write_bytes(orders(0, 6))
    out = subprocess.run(
        [*gpg, "--encrypt", "--recipient", "ops@example.com", "--output", "-", str(plain)],
        check=True, capture_output=True,
    )  # fmt: skip
    # no secret key in this home: gpg lists the packets and exits non-zero
    listed = subprocess.run(
        [*gpg, "--list-packets"], input=out.stdout, capture_output=True, check=False
    )
    assert f"keyid {encryption_key_id(keys['ecc'])}" in listed.stdout.decode()
    put_secret(pgp, "acme", {"PGPPrivateKey": str(keys["ecc"]), "PGPPassphrase": ""})
    assert outcomes(pgp.land(FILE, out.stdout)) == ["DECRYPTED"]
    assert pgp.s3.get_object(Bucket=pgp.bucket, Key=PLAIN)["Body"].read() == orders(0, 6)

    put_secret(pgp, "globex", {"PGPPrivateKey": str(keys["rsa"])})
    wrong = "inbound/globex/orders/day1.csv.pgp"
    assert outcomes(pgp.land(wrong, out.stdout)) == ["FAILED"]
    assert encryption_key_id(keys["ecc"]) in (pgp.file(wrong).reason or "")
