"""StartFileTransfer against real SFTP servers (OpenSSH sshd and asyncssh) into moto S3."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from connector_fixtures import (
    BUCKET,
    Aws,
    LoopThread,
    SftpServer,
    capture_events,
    drain,
    make_connector,
)

from connectors.errors import FileTransferError, TransferRequestError
from connectors.service import BuiltinConnectorService

MIB = 1024 * 1024


def _write(srv: SftpServer, rel: str, data: bytes) -> str:
    path = srv.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return srv.path_of(rel)


def test_retrieve_mixed_files_with_a_missing_one(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    small = os.urandom(10_000)
    big = os.urandom(12 * MIB + 12345)  # three multipart parts of 5 MiB
    paths = [
        _write(server, "out/small.csv", small),
        _write(server, "out/big.bin", big),
        _write(server, "out/empty.csv", b""),
        server.path_of("out/missing.csv"),
    ]
    connector = make_connector(aws, server, client_key)

    transfer_id = service.start_file_transfer(
        ConnectorId=connector,
        RetrieveFilePaths=paths,
        LocalDirectoryPath=f"/{BUCKET}/inbound/acme/orders",
    )["TransferId"]

    results = service.list_file_transfer_results(ConnectorId=connector, TransferId=transfer_id)
    by_path = {r["FilePath"]: r for r in results["FileTransferResults"]}
    assert [r["FilePath"] for r in results["FileTransferResults"]] == paths
    assert by_path[paths[3]]["StatusCode"] == "FAILED"
    assert by_path[paths[3]]["FailureCode"] == "RETRIEVE_FILE_NOT_FOUND"
    for p in paths[:3]:
        assert by_path[p] == {"FilePath": p, "StatusCode": "COMPLETED"}
    for name, data in (("small.csv", small), ("big.bin", big), ("empty.csv", b"")):
        body = aws.s3.get_object(Bucket=BUCKET, Key=f"inbound/acme/orders/{name}")["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert sorted(keys) == sorted(
        f"inbound/acme/orders/{n}" for n in ("small.csv", "big.bin", "empty.csv")
    )
    assert aws.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_send_from_s3_to_the_remote_directory(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    data = os.urandom(7 * MIB + 3)
    aws.s3.put_object(Bucket=BUCKET, Key="outbound/acme/report.bin", Body=data)
    aws.s3.put_object(Bucket=BUCKET, Key="outbound/acme/a.txt", Body=b"hello\n")
    (server.root / "incoming").mkdir()
    connector = make_connector(aws, server, client_key)

    transfer_id = service.start_file_transfer(
        ConnectorId=connector,
        SendFilePaths=[
            f"/{BUCKET}/outbound/acme/report.bin",
            f"/{BUCKET}/outbound/acme/a.txt",
            f"/{BUCKET}/outbound/acme/nope.txt",
        ],
        RemoteDirectoryPath=server.path_of("incoming"),
    )["TransferId"]

    results = service.list_file_transfer_results(ConnectorId=connector, TransferId=transfer_id)
    codes = [(r["StatusCode"], r.get("FailureCode")) for r in results["FileTransferResults"]]
    assert codes == [("COMPLETED", None), ("COMPLETED", None), ("FAILED", "SEND_FILE_NOT_FOUND")]
    assert (server.root / "incoming" / "report.bin").read_bytes() == data
    assert (server.root / "incoming" / "a.txt").read_bytes() == b"hello\n"
    # the temporary upload name never stays behind
    assert sorted(p.name for p in (server.root / "incoming").iterdir()) == ["a.txt", "report.bin"]


def test_eleven_paths_are_refused(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    connector = make_connector(aws, server, client_key)
    paths = [server.path_of(f"f{i}.csv") for i in range(11)]
    with pytest.raises(TransferRequestError, match="1 to 10 paths"):
        service.start_file_transfer(
            ConnectorId=connector, RetrieveFilePaths=paths, LocalDirectoryPath=f"/{BUCKET}/in"
        )
    with pytest.raises(TransferRequestError, match="1 to 10 paths"):
        service.start_file_transfer(
            ConnectorId=connector, RetrieveFilePaths=[], LocalDirectoryPath=f"/{BUCKET}/in"
        )
    # nothing was attempted, nothing was written
    assert aws.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def _read_listing(aws: Aws, out: dict[str, Any]) -> dict[str, Any]:
    """The listing file a StartDirectoryListing wrote under ``/BUCKET/listings``."""
    body = aws.s3.get_object(Bucket=BUCKET, Key=f"listings/{out['OutputFileName']}")["Body"]
    return dict(json.loads(body.read()))


def _assert_listing_events(
    events: dict[str, dict[str, Any]],
    *,
    server: SftpServer,
    connector: str,
    done_listing: dict[str, Any],
    truncated_listing: dict[str, Any],
    failure_code: str,
) -> None:
    """The three listings' EventBridge events carry AWS's directory-listing fields."""
    assert len(events) == 3
    done = events[done_listing["ListingId"]]
    assert done["detail-type"] == "SFTP Connector Directory Listing Completed"
    assert done["detail"]["status-code"] == "COMPLETED"
    assert done["detail"]["item-count"] == 3
    assert done["detail"]["truncated"] is False
    assert done["detail"]["output-file-location"] == {
        "domain": "S3",
        "bucket": BUCKET,
        "key": f"listings/{done_listing['OutputFileName']}",
    }
    assert done["detail"]["remote-directory-path"] == server.path_of("drop")
    assert done["detail"]["output-directory-path"] == f"/{BUCKET}/listings"
    assert done["detail"]["connector-id"] == connector
    assert done["detail"]["url"].startswith("sftp://")
    assert done["detail"]["max-items"] == 1000  # the default, as AWS's
    assert {"start-timestamp", "end-timestamp"} <= set(done["detail"])
    assert events[truncated_listing["ListingId"]]["detail"]["truncated"] is True
    failed = [e for e in events.values() if e["detail"]["status-code"] == "FAILED"]
    assert [e["detail-type"] for e in failed] == ["SFTP Connector Directory Listing Failed"]
    assert failed[0]["detail"]["failure-code"] == failure_code
    assert failed[0]["detail"]["failure-message"]


def test_directory_listing_in_aws_format(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    _write(server, "drop/a.csv", b"x" * 10)
    _write(server, "drop/b.csv", b"y" * 20)
    (server.root / "drop" / "archive").mkdir()
    os.utime(server.root / "drop" / "a.csv", (1_700_000_000, 1_700_000_000))
    connector = make_connector(aws, server, client_key)
    queue = capture_events(aws, "SFTP Connector Directory Listing ")

    out = service.start_directory_listing(
        ConnectorId=connector,
        RemoteDirectoryPath=server.path_of("drop"),
        OutputDirectoryPath=f"/{BUCKET}/listings",
    )
    assert out["OutputFileName"] == f"{connector}-{out['ListingId']}.json"
    listing = _read_listing(aws, out)
    assert listing["truncated"] is False
    assert listing["paths"] == [{"path": server.path_of("drop/archive")}]
    assert listing["files"][0] == {
        "filePath": server.path_of("drop/a.csv"),
        "modifiedTimestamp": "2023-11-14T22:13:20Z",
        "size": 10,
    }
    assert [f["size"] for f in listing["files"]] == [10, 20]

    small = service.start_directory_listing(
        ConnectorId=connector,
        RemoteDirectoryPath=server.path_of("drop"),
        OutputDirectoryPath=f"/{BUCKET}/listings",
        MaxItems=1,
    )
    assert _read_listing(aws, small)["truncated"] is True
    with pytest.raises(FileTransferError) as missing:
        service.start_directory_listing(
            ConnectorId=connector,
            RemoteDirectoryPath=server.path_of("nowhere"),
            OutputDirectoryPath=f"/{BUCKET}/listings",
        )

    # each listing's outcome is an EventBridge event with AWS's directory-listing fields
    _assert_listing_events(
        {e["detail"]["listing-id"]: e for e in drain(aws, queue)},
        server=server,
        connector=connector,
        done_listing=out,
        truncated_listing=small,
        failure_code=missing.value.failure_code,
    )


def test_test_connection_reports_the_host_key(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    connector = make_connector(aws, server, client_key)
    result = service.test_connection(ConnectorId=connector)
    assert result["Status"] == "OK"
    assert result["SftpConnectionDetails"]["HostKey"] in server.public_keys()


def test_after_success_remote_move_and_delete(
    aws: Aws, server: SftpServer, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    _write(server, "drop/a.csv", b"a")
    _write(server, "drop/b.csv", b"b")
    (server.root / "drop" / "done").mkdir()
    connector = make_connector(aws, server, client_key)
    service.start_remote_move(
        ConnectorId=connector,
        SourcePath=server.path_of("drop/a.csv"),
        TargetPath=server.path_of("drop/done/a.csv"),
    )
    service.start_remote_delete(ConnectorId=connector, DeletePath=server.path_of("drop/b.csv"))
    assert sorted(str(p.relative_to(server.root)) for p in Path(server.root).rglob("*")) == [
        "drop",
        "drop/done",
        "drop/done/a.csv",
    ]


@contextmanager
def _counting_sftp_server(
    root: Path, client_key: asyncssh.SSHKey
) -> Iterator[tuple[SftpServer, dict[str, int]]]:
    """An asyncssh SFTP server serving ``root`` that counts its SSH connections: how many are
    open ``now``, the ``peak`` of that, and the ``total`` ever made."""
    lock = threading.Lock()
    live = {"now": 0, "peak": 0, "total": 0}

    class Counting(asyncssh.SSHServer):
        def connection_made(self, conn: Any) -> None:
            with lock:
                live["now"] += 1
                live["total"] += 1
                live["peak"] = max(live["peak"], live["now"])

        def connection_lost(self, exc: Exception | None) -> None:
            with lock:
                live["now"] -= 1

    key = asyncssh.generate_private_key("ssh-ed25519")
    loop = LoopThread()

    async def listen() -> Any:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[key],
            server_factory=Counting,
            authorized_client_keys=asyncssh.import_authorized_keys(
                client_key.export_public_key().decode()
            ),
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root)),
        )

    listener = loop.run(listen())
    try:
        yield SftpServer("127.0.0.1", listener.get_port(), [key], root, "asyncssh"), live
    finally:
        listener.close()
        loop.close()


def test_connections_stay_within_max_concurrent_connections(
    aws: Aws, tmp_path: Path, client_key: asyncssh.SSHKey, service: BuiltinConnectorService
) -> None:
    """Ten files, MaxConcurrentConnections=2: never more than two SSH connections, reused,
    also when the connector's first calls arrive at once (as a scheduled run makes them)."""
    root = tmp_path / "root"
    root.mkdir()
    for i in range(10):
        (root / f"f{i}.csv").write_bytes(os.urandom(50_000))
    with _counting_sftp_server(root, client_key) as (srv, live):
        connector = make_connector(aws, srv, client_key, max_connections=2)
        with ThreadPoolExecutor(max_workers=5) as pool:
            transfer_ids = list(
                pool.map(
                    lambda pair: service.start_file_transfer(
                        ConnectorId=connector,
                        RetrieveFilePaths=[f"/f{i}.csv" for i in pair],
                        LocalDirectoryPath=f"/{BUCKET}/many",
                    )["TransferId"],
                    [(i, i + 1) for i in range(0, 10, 2)],
                )
            )
        again = service.start_file_transfer(
            ConnectorId=connector, RetrieveFilePaths=["/f0.csv"], LocalDirectoryPath=f"/{BUCKET}/x"
        )["TransferId"]
    for transfer_id in transfer_ids:
        results = service.list_file_transfer_results(ConnectorId=connector, TransferId=transfer_id)
        assert {r["StatusCode"] for r in results["FileTransferResults"]} == {"COMPLETED"}
    again_results = service.list_file_transfer_results(ConnectorId=connector, TransferId=again)
    assert again_results["FileTransferResults"][0]["StatusCode"] == "COMPLETED"
    assert 1 <= live["peak"] <= 2
    assert live["total"] <= 2  # the second call reused a pooled connection
    assert aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="many/")["KeyCount"] == 10
