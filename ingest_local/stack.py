"""``ingest up``: the whole pipeline on loopback, from the repo's own ``template.yaml``.

Start order: moto server (the Transfer connector API in front of it,
:mod:`ingest_local.transfer_api`) → deploy the template → feeds file → Lambda runtime →
partners → SFTP gateway → ``endpoints.json``. Stop order is the reverse, except that the
Transfer connector API stops first: its background transfers are cancelled and waited for
before anything they use goes. Host keys, the partner registry and the demo partner's key
live in the state dir and survive restarts; moto's data (objects, queues, tables) is in
memory and starts empty every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncssh

import ingest
from ingest.adapters.aws import DEFAULT_REGION, AwsTarget
from ingest.adapters.feeds_publisher import publish_feeds
from ingest.adapters.partners import PartnerExistsError, add_partner, restore_partners
from ingest.cli.context import FAKE_CREDENTIALS, resources_from_outputs
from ingest.cli.endpoints import (
    ENDPOINTS_FILE,
    Endpoints,
    SftpEndpoint,
    read_endpoints,
    write_endpoints,
)
from ingest.domain.feeds import load_feeds
from ingest.errors import ConfigError
from ingest_local.deploy import DEFAULT_STACK_NAME, DeployedStack, deploy_template
from ingest_local.gateway import GatewayConfig, start_gateway
from ingest_local.moto_fidelity import (
    enrich_s3_event_records,
    serialize_dynamodb_requests,
    transfer_update_user,
)
from ingest_local.runtime import LambdaRuntime
from ingest_local.transfer_api import LocalAwsEndpoint, start_transfer_service

log = logging.getLogger("ingest_local.stack")

DEMO_PARTNER = "demo"
DEMO_KEY_DIR = "demo-partner"
#: the Transfer users' role when a template has none yet (moto does not check roles).
FALLBACK_USER_ROLE = "arn:aws:iam::123456789012:role/sftp-ingest-local-transfer-user"


def repo_file(name: str) -> Path:
    """A file at the top of the checkout: ./NAME if present, else next to the package."""
    here = Path(name)
    if here.exists():
        return here.resolve()
    return Path(ingest.__file__).resolve().parent.parent / name


@dataclass
class StackOptions:
    """How to run the local stack (``ingest up``'s options)."""

    state_dir: Path
    template: Path = field(default_factory=lambda: repo_file("template.yaml"))
    feeds: Path | None = field(default_factory=lambda: repo_file("fixtures/feeds.yaml"))
    host: str = "127.0.0.1"
    sftp_port: int = 0
    aws_port: int = 0
    region: str = DEFAULT_REGION
    stack_name: str = DEFAULT_STACK_NAME
    parameters: dict[str, str] = field(default_factory=dict)
    demo_partner: bool = False
    gateway: bool = True


@dataclass
class DemoPartner:
    """The test-only partner registered by ``--demo-partner``."""

    name: str
    private_key: Path
    public_key: Path


class LocalStack:
    """The running local stack. Use as a context manager, or call start() / stop()."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.state_dir = options.state_dir.resolve()
        self.moto: LocalAwsEndpoint | None = None
        self.aws: AwsTarget | None = None
        self.deployed: DeployedStack | None = None
        self.runtime: LambdaRuntime | None = None
        self.gateway: Any = None
        self.demo: DemoPartner | None = None
        self.endpoints: Endpoints | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- start ----------------------------------------------------------------------------

    def start(self) -> Endpoints:
        """Bring everything up and write ``endpoints.json``; returns its contents."""
        opts = self.options
        self.state_dir.mkdir(parents=True, exist_ok=True)
        refuse_if_running(self.state_dir)
        # This process only ever talks to the moto it starts: fake credentials, no CA bundle.
        os.environ.update(FAKE_CREDENTIALS)
        os.environ.pop("AWS_CA_BUNDLE", None)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        feeds = load_feeds(opts.feeds) if opts.feeds else None  # fail before starting anything

        # moto, with the Transfer connector API (which moto lacks) served in front of it
        self.moto = LocalAwsEndpoint(opts.host, opts.aws_port)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        enrich_s3_event_records()
        serialize_dynamodb_requests()
        transfer_update_user()  # ingest partners repair
        self.aws = aws = AwsTarget(region=opts.region, endpoint_url=f"http://{host}:{port}")

        self.deployed = deployed = deploy_template(
            aws, opts.template, stack_name=opts.stack_name, parameters=opts.parameters
        )
        resources = self._resources(deployed)
        # StartFileTransfer & co. on this endpoint, as AWS runs them (ConnectorEngine=managed)
        self.moto.api.attach(start_transfer_service(aws, deployed.stack_name))
        if feeds is not None and opts.feeds is not None:
            self._upload_feeds(opts.feeds, deployed)

        self.runtime = LambdaRuntime(
            deployed, code_root=opts.template.resolve().parent, log_dir=self.state_dir / "logs"
        )
        self.runtime.start()
        resources["failed_events_queue_url"] = self.runtime.failed_events_queue_url

        sftp = self._start_gateway(resources) if opts.gateway else None
        self.endpoints = Endpoints(
            aws_endpoint_url=aws.endpoint_url or "",
            region=opts.region,
            sftp=sftp,
            resources=resources,
        )
        write_endpoints(self.state_dir, self.endpoints)
        return self.endpoints

    def _resources(self, deployed: DeployedStack) -> dict[str, str]:
        assert self.aws is not None
        resources = resources_from_outputs(deployed.outputs)
        sqs = self.aws.shared_client("sqs")
        for name, value in list(resources.items()):
            # CloudFormation reports AWS-style queue URLs; hand out the local endpoint's.
            if value.startswith("https://sqs."):
                resources[name] = sqs.get_queue_url(QueueName=value.rsplit("/", 1)[1])["QueueUrl"]
        resources["stack"] = deployed.stack_name
        resources.setdefault("TransferUserRoleArn", FALLBACK_USER_ROLE)
        # where the functions' code is (CodeUri: .), for `ingest invoke`
        resources["code_root"] = str(self.options.template.resolve().parent)
        servers = deployed.physical_ids_of("AWS::Transfer::Server")
        if "server_id" not in resources:
            if servers:
                resources["server_id"] = servers[0]
            else:  # a template without a Transfer server still gets a gateway locally
                transfer = self.aws.shared_client("transfer")
                server = transfer.create_server(Domain="S3", Protocols=["SFTP"])
                resources["server_id"] = server["ServerId"]
        for required in ("bucket", "ledger_table"):
            if required not in resources:
                raise ConfigError(
                    f"the template has no output for {required!r} "
                    f"(outputs: {sorted(deployed.outputs)})"
                )
        return resources

    def _upload_feeds(self, feeds_file: Path, deployed: DeployedStack) -> None:
        assert self.aws is not None
        uris = {
            f.environment["FEEDS_URI"]
            for f in deployed.functions.values()
            if "FEEDS_URI" in f.environment
        }
        s3 = self.aws.shared_client("s3")
        text = feeds_file.read_text(encoding="utf-8")
        for uri in sorted(uris):
            publish_feeds(s3, uri, text, source=str(feeds_file))

    def _start_gateway(self, resources: dict[str, str]) -> SftpEndpoint:
        # The gateway is asyncio; it gets its own loop thread so the stack stays synchronous.
        assert self.aws is not None
        transfer = self.aws.shared_client("transfer")
        restore_partners(transfer, resources["server_id"], self.state_dir)
        if self.options.demo_partner:
            self.demo = ensure_demo_partner(
                transfer,
                resources["server_id"],
                resources["bucket"],
                self.state_dir,
                role=resources["TransferUserRoleArn"],
            )
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="sftp-gateway-loop", daemon=True
        )
        self._loop_thread.start()
        config = GatewayConfig(
            aws=self.aws,
            bucket=resources["bucket"],
            server_id=resources["server_id"],
            state_dir=self.state_dir,
            host=self.options.host,
            port=self.options.sftp_port,
        )
        self.gateway = asyncio.run_coroutine_threadsafe(start_gateway(config), self._loop).result(
            timeout=60
        )
        write_known_hosts(self.state_dir, self.options.host, self.gateway.port, self.gateway)
        return SftpEndpoint(
            host=self.options.host,
            port=self.gateway.port,
            host_key_fingerprints=list(self.gateway.host_key_fingerprints),
        )

    # --- stop -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Shut down in reverse order; ``endpoints.json`` is removed first."""
        if self.endpoints is not None:  # only what this stack wrote (never another's)
            (self.state_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
            self.endpoints = None
        if self.moto is not None:
            try:
                self.moto.api.close()
            except Exception:  # shutting down anyway; say what went wrong
                log.exception("the local Transfer API did not close cleanly")
        if self.gateway is not None and self._loop is not None:
            try:
                asyncio.run_coroutine_threadsafe(self.gateway.close(), self._loop).result(30)
            except Exception:  # shutting down anyway; say what went wrong
                log.exception("the SFTP gateway did not close cleanly")
            self.gateway = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
            self._loop.close()
            self._loop = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None


def refuse_if_running(state_dir: Path) -> None:
    """Refuse to start over a stack that is still serving from ``state_dir``.

    A leftover ``endpoints.json`` whose endpoint no longer answers (a killed stack) is stale
    and simply replaced.
    """
    try:
        endpoints = read_endpoints(state_dir)
    except ConfigError:
        return
    url = urlsplit(endpoints.aws_endpoint_url)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=1):
            pass
    except OSError:
        return
    raise ConfigError(
        f"a local stack is already running from {state_dir} ({endpoints.aws_endpoint_url}); "
        "stop it first or use another --state-dir"
    )


def write_known_hosts(state_dir: Path, host: str, port: int, gateway: Any) -> Path:
    """``<state-dir>/known_hosts``: the gateway's host keys, for ``-o UserKnownHostsFile``."""
    name = host if port == 22 else f"[{host}]:{port}"
    lines = []
    for key in gateway.host_keys:
        public = key.export_public_key("openssh").decode().split()
        lines.append(f"{name} {public[0]} {public[1]}\n")
    path = state_dir / "known_hosts"
    path.write_text("".join(lines))
    return path


def ensure_demo_partner(
    transfer: Any, server_id: str, bucket: str, state_dir: Path, *, role: str
) -> DemoPartner:
    """Register partner ``demo`` with a key pair kept in the state dir (test-only, no secret)."""
    key_dir = state_dir / DEMO_KEY_DIR
    private, public = key_dir / "id_ed25519", key_dir / "id_ed25519.pub"
    if not private.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519", comment="sftp-ingest demo partner")
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.export_private_key())
        key.write_public_key(str(public))
    # Already registered on an earlier start (and restored from the registry): keep it.
    with contextlib.suppress(PartnerExistsError):
        add_partner(
            transfer,
            server_id,
            bucket,
            DEMO_PARTNER,
            public.read_text(),
            role=role,
            state_dir=state_dir,
        )
    return DemoPartner(DEMO_PARTNER, private, public)
