"""Connections killed mid-file: the retrieve resumes and completes, or fails cleanly."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import asyncssh
from connector_fixtures import BUCKET, Aws, make_connector, start_asyncssh, start_sshd
from support_aws import s3_crc32

from connectors.service import BuiltinConnectorService
from connectors.transfer_engine import SEND_RESUME_REWIND

MIB = 1024 * 1024


class DroppingSFTPServer(asyncssh.SFTPServer):
    """Aborts the whole SSH connection once a connection has served ``limit`` bytes."""

    limit: ClassVar[int] = 6 * MIB
    drops_left: ClassVar[int] = 1
    served: ClassVar[int] = 0
    connections: ClassVar[int] = 0

    def __init__(self, chan: Any, chroot: str) -> None:
        super().__init__(chan, chroot=chroot)
        type(self).connections += 1
        self._mine = 0

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        self._drop_if_due()
        data: bytes = super().read(file_obj, offset, size)  # type: ignore[assignment]
        self._count(len(data))
        return data

    def _drop_if_due(self) -> None:
        cls = type(self)
        if cls.drops_left > 0 and self._mine >= cls.limit:
            cls.drops_left -= 1
            self.channel.get_connection().abort()
            raise asyncssh.SFTPConnectionLost("dropped by the test")

    def _count(self, n: int) -> None:
        self._mine += n
        type(self).served += n


S = TypeVar("S", bound="DroppingSFTPServer")


class DroppingWritesSFTPServer(DroppingSFTPServer):
    """Aborts the connection once a connection has *received* ``limit`` bytes of writes."""

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        self._drop_if_due()
        written: int = super().write(file_obj, offset, data)  # type: ignore[assignment]
        self._count(len(data))
        return written


def _fresh(cls: type[S], drops: int) -> type[S]:
    return type("Dropping", (cls,), {"drops_left": drops, "served": 0, "connections": 0})


def _retrieve(service: BuiltinConnectorService, connector: str, path: str) -> dict[str, str]:
    transfer_id = service.start_file_transfer(
        ConnectorId=connector, RetrieveFilePaths=[path], LocalDirectoryPath=f"/{BUCKET}/in"
    )["TransferId"]
    results = service.list_file_transfer_results(ConnectorId=connector, TransferId=transfer_id)
    return dict(results["FileTransferResults"][0])


def test_dropped_connection_resumes_at_its_offset(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    data = os.urandom(16 * MIB + 777)
    server_cls = _fresh(DroppingSFTPServer, drops=1)
    srv = start_asyncssh(tmp_path, client_key, sftp_class=server_cls)
    try:
        (srv.root / "big.bin").write_bytes(data)
        connector = make_connector(aws, srv, client_key)
        result = _retrieve(service, connector, "/big.bin")
    finally:
        srv.stop()
    assert result == {"FilePath": "/big.bin", "StatusCode": "COMPLETED"}
    got = aws.s3.get_object(Bucket=BUCKET, Key="in/big.bin", ChecksumMode="ENABLED")
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(data).digest()
    # the parts kept from before the drop and those sent after it add up to the right
    # composite CRC32 (the fixture's engine uses 5 MiB parts)
    assert got["ChecksumCRC32"] == s3_crc32(data, 5 * MIB)
    assert server_cls.connections == 2
    # resumed, not restarted: well under two full reads of the file went over the wire
    assert server_cls.served < len(data) + 8 * MIB
    assert aws.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_connection_that_keeps_dropping_fails_cleanly(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    server_cls = _fresh(DroppingSFTPServer, drops=100)
    server_cls.limit = 1 * MIB
    srv = start_asyncssh(tmp_path, client_key, sftp_class=server_cls)
    try:
        (srv.root / "big.bin").write_bytes(os.urandom(12 * MIB))
        connector = make_connector(aws, srv, client_key)
        result = _retrieve(service, connector, "/big.bin")
    finally:
        srv.stop()
    assert result["StatusCode"] == "FAILED"
    assert result["FailureCode"] == "CONNECTION_ERROR"
    # never a truncated object, and no multipart upload left behind
    assert aws.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert aws.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_openssh_session_killed_mid_file(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    """Kill the sshd process serving our session while the file is in flight."""
    data = os.urandom(24 * MIB + 5)
    srv = start_sshd(tmp_path / "sshd", client_key)
    killed: list[int] = []
    lock = threading.Lock()

    def progress(path: str, done: int, total: int) -> None:
        with lock:
            if killed or done < 5 * MIB:
                return
            # only processes this test started: the children of our own sshd
            for child in _children(srv.pid):
                os.kill(child, signal.SIGKILL)
                killed.append(child)

    try:
        (srv.root / "big.bin").write_bytes(data)
        connector = make_connector(aws, srv, client_key)
        records = service.run(
            service.file_transfer(
                connector,
                retrieve_file_paths=[srv.path_of("big.bin")],
                local_directory_path=f"/{BUCKET}/in",
                progress=progress,
            )
        )
    finally:
        srv.stop()
    assert killed, "the session was never killed"
    assert records[0].status == "COMPLETED", records[0]
    body = aws.s3.get_object(Bucket=BUCKET, Key="in/big.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def _send_through(
    server_cls: type[DroppingWritesSFTPServer],
    limit: int,
    *,
    aws: Aws,
    tmp_path: Path,
    client_key: asyncssh.SSHKey,
    service: BuiltinConnectorService,
) -> tuple[dict[str, str], Path]:
    """Send ``outbound/report.bin`` to ``/out`` on a server that drops after ``limit`` bytes
    of writes; returns the file's result and the server's ``out`` directory."""
    server_cls.limit = limit
    srv = start_asyncssh(tmp_path, client_key, sftp_class=server_cls)
    out = srv.root / "out"
    try:
        out.mkdir()
        connector = make_connector(aws, srv, client_key)
        transfer_id = service.start_file_transfer(
            ConnectorId=connector,
            SendFilePaths=[f"/{BUCKET}/outbound/report.bin"],
            RemoteDirectoryPath="/out",
        )["TransferId"]
        results = service.list_file_transfer_results(ConnectorId=connector, TransferId=transfer_id)
    finally:
        srv.stop()
    return dict(results["FileTransferResults"][0]), out


def test_dropped_send_resumes_from_what_reached_the_server(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    data = os.urandom(40 * MIB + 555)
    aws.s3.put_object(Bucket=BUCKET, Key="outbound/report.bin", Body=data)
    server_cls = _fresh(DroppingWritesSFTPServer, drops=1)
    result, out = _send_through(
        server_cls, 30 * MIB, aws=aws, tmp_path=tmp_path, client_key=client_key, service=service
    )
    assert result == {"FilePath": f"/{BUCKET}/outbound/report.bin", "StatusCode": "COMPLETED"}
    sent = (out / "report.bin").read_bytes()
    assert hashlib.sha256(sent).digest() == hashlib.sha256(data).digest()
    assert server_cls.connections == 2
    # resumed, not restarted: the second connection rewrote at most the rest of the file plus
    # one pipeline window, not all of it
    assert server_cls.served < len(data) + SEND_RESUME_REWIND + 8 * MIB
    assert sorted(p.name for p in out.iterdir()) == ["report.bin"]


def test_send_that_keeps_dropping_fails_and_leaves_no_temp_file(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    aws.s3.put_object(Bucket=BUCKET, Key="outbound/report.bin", Body=os.urandom(12 * MIB))
    server_cls = _fresh(DroppingWritesSFTPServer, drops=100)
    result, out = _send_through(
        server_cls, 1 * MIB, aws=aws, tmp_path=tmp_path, client_key=client_key, service=service
    )
    assert result["StatusCode"] == "FAILED"
    assert result["FailureCode"] == "CONNECTION_ERROR"
    assert list(out.iterdir()) == []  # neither a truncated file nor its .ingest-part temp


def test_send_of_an_object_replaced_meanwhile_fails_with_send_file_changed(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    """A retry must not splice two versions of the object: reads are pinned to its ETag."""
    aws.s3.put_object(Bucket=BUCKET, Key="outbound/report.bin", Body=os.urandom(20 * MIB))

    class ReplacingServer(DroppingWritesSFTPServer):
        def write(self, file_obj: object, offset: int, data: bytes) -> int:
            if type(self).drops_left > 0 and self._mine >= type(self).limit:
                aws.s3.put_object(Bucket=BUCKET, Key="outbound/report.bin", Body=b"new")
            return super().write(file_obj, offset, data)

    server_cls = _fresh(ReplacingServer, drops=1)
    result, out = _send_through(
        server_cls, 10 * MIB, aws=aws, tmp_path=tmp_path, client_key=client_key, service=service
    )
    assert result["StatusCode"] == "FAILED"
    assert result["FailureCode"] == "SEND_FILE_CHANGED"
    assert list(out.iterdir()) == []
