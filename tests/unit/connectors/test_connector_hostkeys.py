"""Every accepted trusted-key form agrees with ``ssh-keygen -lf`` for the same key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncssh
import pytest

from connectors.errors import HostKeyFormatError
from connectors.hostkeys import HostKeyPolicy, describe_key, parse_host_key


def _keygen(tmp_path: Path, kind: str, bits: str | None = None) -> Path:
    path = tmp_path / f"key_{kind}"
    cmd = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "ops@example", "-f", str(path)]
    if bits:
        cmd[4:4] = ["-b", bits]
    subprocess.run(cmd, check=True)
    return path.with_suffix(".pub")


def _fingerprint(pub: Path, hash_name: str) -> str:
    # "256 SHA256:abc… ops@example (ED25519)" → "SHA256:abc…"
    out = subprocess.run(
        ["ssh-keygen", "-E", hash_name, "-lf", str(pub)], check=True, capture_output=True, text=True
    ).stdout
    return out.split()[1]


@pytest.mark.parametrize(
    ("kind", "bits"), [("ed25519", None), ("ecdsa", "256"), ("ecdsa", "521"), ("rsa", "2048")]
)
def test_every_form_matches_ssh_keygen(tmp_path: Path, kind: str, bits: str | None) -> None:
    pub = _keygen(tmp_path, kind, bits)
    sha256 = _fingerprint(pub, "sha256")
    md5 = _fingerprint(pub, "md5")
    assert sha256.startswith("SHA256:") and md5.startswith("MD5:")
    line = pub.read_text().strip()
    key_type, blob, _comment = line.split()
    (tmp_path / "other").mkdir()
    other = _keygen(tmp_path / "other", "ed25519")
    presented = asyncssh.read_public_key(str(pub))
    stranger = asyncssh.read_public_key(str(other))

    forms = {
        "key with comment": line,
        "key without comment": f"{key_type} {blob}",
        "known_hosts line": f"partner.example.com,10.0.0.7 {key_type} {blob}",
        "known_hosts line with port": f"[sftp.partner.example]:2222 {line}",
        "SHA256 without padding": sha256,
        "SHA256 with padding": sha256 + "=",
        "MD5 with prefix": md5,
        "MD5 bare": md5.removeprefix("MD5:"),
        "MD5 upper case": md5.removeprefix("MD5:").upper(),
    }
    for label, text in forms.items():
        trusted = parse_host_key(text)
        assert trusted.matches(presented), label
        assert not trusted.matches(stranger), label
        # the fingerprint we print for an entry is ssh-keygen's (or its MD5 for MD5 entries)
        assert trusted.fingerprint in (sha256, md5), label

    # scan output: each printed form is ssh-keygen's and parses back to the same key
    scanned = describe_key(presented, "sftp.partner.example", 2222)
    assert scanned.sha256 == sha256
    assert scanned.md5 == md5
    assert scanned.public_key.split()[:2] == [key_type, blob]
    assert scanned.known_hosts.startswith("[sftp.partner.example]:2222 ")
    for text in (scanned.public_key, scanned.sha256, scanned.md5, scanned.known_hosts):
        assert parse_host_key(text).matches(presented)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "SHA256:tooshort",
        "MD5:zz:11",
        "ssh-ed25519 notbase64!!",
        "@cert-authority *.example.com ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIJm0Ny0+2UuZjlEleOuXAkRaocafEg0cqEdfFf8pt6cf",
        "just some words here",
    ],
)
def test_unparseable_keys_are_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(HostKeyFormatError):
        parse_host_key(text)


def test_no_trust_on_first_use() -> None:
    with pytest.raises(HostKeyFormatError, match="at least one trusted host key"):
        HostKeyPolicy([])


def test_policy_offers_only_trusted_key_algorithms_when_keys_are_full() -> None:
    ed = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048).convert_to_public()
    policy = HostKeyPolicy([ed.export_public_key().decode(), rsa.export_public_key().decode()])
    algs = policy.host_key_algorithms()
    assert algs is not None
    assert "ssh-ed25519" in algs and "rsa-sha2-256" in algs
    assert not any("ecdsa" in a for a in algs)
    with_fp = HostKeyPolicy([str(ed.get_fingerprint("sha256"))])
    assert with_fp.host_key_algorithms() is None
    assert with_fp.is_trusted(ed) and not with_fp.is_trusted(rsa)
