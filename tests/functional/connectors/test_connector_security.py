"""Host keys in the handshake: rotation, man in the middle, fingerprints of a real sshd."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from connector_fixtures import (
    BUCKET,
    Aws,
    LoopThread,
    SftpServer,
    make_connector,
    start_asyncssh,
    start_sshd,
)

from connectors.hostkeys import scan_host_keys
from connectors.service import BuiltinConnectorService


def _retrieve(service: BuiltinConnectorService, connector: str, paths: list[str]) -> list[Any]:
    transfer_id = service.start_file_transfer(
        ConnectorId=connector, RetrieveFilePaths=paths, LocalDirectoryPath=f"/{BUCKET}/in"
    )["TransferId"]
    out = service.list_file_transfer_results(ConnectorId=connector, TransferId=transfer_id)
    return list(out["FileTransferResults"])


def test_man_in_the_middle_fails_with_both_fingerprints_and_writes_nothing(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    (server.root / "a.csv").write_text("id\n1\n")
    # the operator trusts the real partner's key; this server presents another one
    real_partner = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    connector = make_connector(
        aws, server, client_key, trusted=[real_partner.export_public_key().decode()]
    )
    results = _retrieve(service, connector, [server.path_of("a.csv")])

    assert results[0]["StatusCode"] == "FAILED"
    assert results[0]["FailureCode"] == "HOST_KEY_MISMATCH"
    message = results[0]["FailureMessage"]
    assert str(real_partner.get_fingerprint("sha256")) in message
    assert str(server.host_keys[0].get_fingerprint("sha256")) in message
    assert aws.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert aws.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    check = service.test_connection(ConnectorId=connector)
    assert check["Status"] == "ERROR" and "HOST_KEY_MISMATCH" in check["StatusMessage"]


def test_credentials_are_never_offered_to_an_unverified_server(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    """The asyncssh server records every authentication attempt: there must be none."""
    attempts: list[str] = []

    class Recording(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            attempts.append(username)
            return True

    loop = LoopThread()
    key = asyncssh.generate_private_key("ssh-ed25519")

    async def listen() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[key],
            server_factory=Recording,
            sftp_factory=True,
        )

    listener = loop.run(listen())
    try:
        srv = SftpServer("127.0.0.1", listener.get_port(), [key], tmp_path, "asyncssh")
        other = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
        connector = make_connector(
            aws, srv, client_key, trusted=[str(other.get_fingerprint("sha256"))]
        )
        results = _retrieve(service, connector, ["/etc/hostname"])
        assert results[0]["FailureCode"] == "HOST_KEY_MISMATCH"
        assert attempts == []

        # the same server, now trusted: authentication happens (and fails: unknown key)
        trusted = make_connector(aws, srv, client_key, trusted=srv.public_keys())
        results = _retrieve(service, trusted, ["/etc/hostname"])
        assert results[0]["FailureCode"] == "AUTH_FAILURE"
        assert attempts and attempts[0] == "root"
    finally:
        listener.close()
        loop.close()


def test_key_rotation_with_two_trusted_keys(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    old = asyncssh.generate_private_key("ssh-ed25519")
    new = asyncssh.generate_private_key("ssh-ed25519")
    trusted = [
        old.convert_to_public().export_public_key().decode(),
        str(new.get_fingerprint("sha256")),
    ]
    for label, host_key in (("before", old), ("after", new)):
        srv = start_asyncssh(tmp_path / label, client_key, host_key=host_key)
        try:
            (srv.root / f"{label}.csv").write_text(label)
            connector = make_connector(aws, srv, client_key, trusted=trusted)
            results = _retrieve(service, connector, [srv.path_of(f"{label}.csv")])
            assert results[0]["StatusCode"] == "COMPLETED", results
        finally:
            srv.stop()
    keys = sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == ["in/after.csv", "in/before.csv"]


def test_openssh_with_several_host_keys_and_each_trusted_form(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    srv = start_sshd(tmp_path / "sshd", client_key, key_types=("ed25519", "ecdsa", "rsa"))
    try:
        (srv.root / "x.csv").write_text("x")
        rsa_pub = tmp_path / "sshd" / "ssh_host_rsa_key.pub"
        fp = subprocess.run(
            ["ssh-keygen", "-lf", str(rsa_pub)], capture_output=True, text=True, check=True
        ).stdout.split()[1]
        md5 = subprocess.run(
            ["ssh-keygen", "-E", "md5", "-lf", str(rsa_pub)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[1]
        # only the RSA key is trusted, in each form: the connector must find it
        for form in (rsa_pub.read_text(), fp, fp + "=", md5, md5.removeprefix("MD5:")):
            connector = make_connector(aws, srv, client_key, trusted=[form])
            results = _retrieve(service, connector, [srv.path_of("x.csv")])
            assert results[0]["StatusCode"] == "COMPLETED", (form, results)

        # scan prints every key with the fingerprints ssh-keygen prints for the key files
        scanned = asyncio.run(scan_host_keys(srv.host, srv.port))
        expected = {}
        for kind in ("ed25519", "ecdsa", "rsa"):
            pub = tmp_path / "sshd" / f"ssh_host_{kind}_key.pub"
            out = subprocess.run(
                ["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True
            ).stdout
            expected[out.split()[1]] = pub.read_text().split()[:2]
        assert {s.sha256: s.public_key.split()[:2] for s in scanned} == expected
        assert all(s.known_hosts.startswith(f"[127.0.0.1]:{srv.port} ") for s in scanned)
    finally:
        srv.stop()


@pytest.mark.parametrize("form", ["password"])
def test_password_login_wrong_password_is_auth_failure(
    aws: Aws,
    tmp_path: Path,
    client_key: asyncssh.SSHKey,
    service: BuiltinConnectorService,
    form: str,
) -> None:
    from connectors.config import create_connector

    class PasswordServer(asyncssh.SSHServer):
        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == "partner" and password == "right-password"

    loop = LoopThread()
    key = asyncssh.generate_private_key("ssh-ed25519")
    root = tmp_path / "pw"
    root.mkdir()
    (root / "f.txt").write_text("pw")

    async def listen() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[key],
            server_factory=PasswordServer,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root)),
        )

    listener = loop.run(listen())
    try:
        srv = SftpServer("127.0.0.1", listener.get_port(), [key], root, "asyncssh")
        codes = []
        for password in ("wrong", "right-password"):
            connector = create_connector(
                aws.transfer,
                aws.secrets,
                url=srv.url,
                username="partner",
                password=password,
                trusted_host_keys=srv.public_keys(),
                access_role="arn:aws:iam::123456789012:role/x",
            )
            results = _retrieve(service, connector, ["/f.txt"])
            codes.append((results[0]["StatusCode"], results[0].get("FailureCode")))
        assert codes == [("FAILED", "AUTH_FAILURE"), ("COMPLETED", None)]
    finally:
        listener.close()
        loop.close()
