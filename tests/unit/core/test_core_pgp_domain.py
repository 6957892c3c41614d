"""PGP file names and the key ids a message declares (ingest.domain.pgp), on messages made
at test time by pysequoia."""

from __future__ import annotations

import pysequoia
import pytest

from ingest.domain.envelopes import EnvelopeKind, envelope_kind
from ingest.domain.pgp import plaintext_key, recipient_key_ids


@pytest.mark.parametrize(
    ("key", "plain"),
    [
        ("inbound/acme/orders.csv.pgp", "inbound/acme/orders.csv"),
        ("inbound/acme/x/y.csv.gz.GPG", "inbound/acme/x/y.csv.gz"),
        ("inbound/acme/batch.zip.asc", "inbound/acme/batch.zip"),
    ],
)
def test_the_plaintext_is_the_key_without_its_suffix(key: str, plain: str) -> None:
    assert envelope_kind(key) is EnvelopeKind.PGP
    assert plaintext_key(key) == plain


def test_only_files_under_a_partner_prefix_are_decrypted() -> None:
    assert envelope_kind("config/key.asc") is None
    assert envelope_kind("inbound/orders.csv.pgp") is None
    with pytest.raises(ValueError):
        plaintext_key("inbound/acme/orders.csv")


@pytest.mark.parametrize("armor", [False, True])
def test_the_key_ids_of_every_recipient_are_read_from_the_first_bytes(armor: bool) -> None:
    a, b = pysequoia.Tsk.generate("a"), pysequoia.Tsk.generate("b")
    certs = [a.extract_certificate(), b.extract_certificate()]
    message = pysequoia.encrypt(b"x" * 200_000, certs, armor=armor)
    ids = recipient_key_ids(message[:4096])
    assert len(ids) == 2 and all(len(i) == 16 and i == i.upper() for i in ids)
    assert ids == recipient_key_ids(message)
    assert recipient_key_ids(pysequoia.encrypt(b"x", certs[:1], armor=armor))[0] in ids


def test_passphrase_messages_and_garbage() -> None:
    assert recipient_key_ids(pysequoia.encrypt(b"x", passwords=["pw"], armor=False)) == [
        "passphrase"
    ]
    assert recipient_key_ids(b"not a pgp message") == []
    assert recipient_key_ids(b"") == []
