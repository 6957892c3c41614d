"""Fixtures for the gateway tests: a real moto server, real Transfer users, a real gateway.

The gateway runs on its own asyncio loop in a background thread, so tests can drive it
with blocking clients (OpenSSH ``sftp``, paramiko) from the test thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
from gateway_kit import (
    BUCKET,
    LEDGER,
    REGION,
    USER_ROLE,
    AwsWorld,
    GatewayThread,
    PartnerKeys,
)
from moto.server import ThreadedMotoServer
from support_aws import fake_aws_env

from ingest.adapters.aws import AwsTarget
from ingest.adapters.partners import add_partner
from ingest_local.gateway import GatewayConfig, Limits
from ingest_local.tables import create_pk_sk_table


@pytest.fixture(scope="session", autouse=True)
def _aws_env() -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    fake_aws_env(mp, REGION)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def moto_endpoint(_aws_env: None) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def _base_resources(moto_endpoint: str) -> AwsTarget:
    """The bucket and ledger table (which the gateway must leave alone), created when missing.

    The moto server runs in this process, and moto's backends are process-wide: a test
    elsewhere that ends a ``mock_aws()`` block resets them, so they are checked per test.
    """
    aws = AwsTarget(region=REGION, endpoint_url=moto_endpoint)
    s3 = aws.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
    ddb = aws.client("dynamodb")
    if LEDGER not in ddb.list_tables()["TableNames"]:
        create_pk_sk_table(ddb, LEDGER)
    return aws


@pytest.fixture
def world(_base_resources: AwsTarget) -> AwsWorld:
    aws = _base_resources
    s3 = aws.client("s3")
    # the bucket is shared by the session: every test starts with it empty
    for upload in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    server_id = aws.client("transfer").create_server(
        Domain="S3", Protocols=["SFTP"], IdentityProviderType="SERVICE_MANAGED"
    )["ServerId"]
    return AwsWorld(aws, BUCKET, LEDGER, server_id)


@pytest.fixture(scope="session")
def host_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state dir for host keys across tests: generating RSA keys takes seconds."""
    return tmp_path_factory.mktemp("gateway-state")


@pytest.fixture
def start_gw(world: AwsWorld, host_key_dir: Path) -> Iterator[Callable[..., GatewayThread]]:
    started: list[GatewayThread] = []

    def start(limits: Limits | None = None, bucket: str | None = None) -> GatewayThread:
        config = GatewayConfig(
            aws=world.aws,
            bucket=bucket or world.bucket,
            server_id=world.server_id,
            state_dir=host_key_dir,
            limits=limits or Limits(),
        )
        gw = GatewayThread(config)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def gw(start_gw: Callable[..., GatewayThread]) -> GatewayThread:
    return start_gw()


@pytest.fixture
def make_partner(world: AwsWorld, tmp_path: Path) -> Callable[[str], PartnerKeys]:
    def make(name: str, *, register: bool = True, bucket: str | None = None) -> PartnerKeys:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=f"{name}@test")
        path = tmp_path / f"{name}_ed25519"
        key.write_private_key(str(path))
        path.chmod(0o600)
        public = key.export_public_key("openssh").decode().strip()
        if register:
            add_partner(
                world.client("transfer"),
                world.server_id,
                bucket or world.bucket,
                name,
                public,
                role=USER_ROLE,
                state_dir=tmp_path / "state",
            )
        return PartnerKeys(name, path, public, key)

    return make
