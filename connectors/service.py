"""The connector API of AWS Transfer Family, served by our engine.

:class:`BuiltinConnectorService` has the same method names, keyword arguments and response
shapes as boto3's ``transfer`` client for ``start_file_transfer``, ``start_directory_listing``,
``list_file_transfer_results``, ``test_connection``, ``start_remote_delete`` and
``start_remote_move``. Callers (the retrieve job, the CLI) take either one, so switching
between our engine and the managed service is a matter of which object is passed in.

Here ``start_*`` return once the work is final (the Lambda that calls them must not leave
work behind). :class:`connectors.background.BackgroundConnectorService` returns at once, as
AWS does; both read results back through ``list_file_transfer_results``.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from msgspec import Struct

from connectors.config import ConnectorConfig, describe_connector, load_credentials
from connectors.engine_registry import EngineRegistry
from connectors.errors import FileTransferError, TransferNotFoundError, TransferRequestError
from connectors.hostkeys import HostKeyPolicy
from connectors.listing import ListingRun, list_into_s3
from connectors.request_rules import (
    DEFAULT_LISTING_ITEMS,
    MAX_LISTING_ITEMS,
    TransferRequest,
    check_transfer_request,
    join_key,
    split_s3_path,
)
from connectors.sftp import Endpoint, SessionPool, connection_report
from connectors.status import (
    FileRecord,
    FileTransferStatus,
    StatusFlusher,
    StatusPublisher,
    StatusStore,
)
from connectors.transfer_engine import TransferEngine
from ingest.adapters.publisher import iso_now
from ingest.errors import IngestError
from ingest.shared.aio import Bridge

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_transfer.client import TransferClient

log = logging.getLogger(__name__)
T = TypeVar("T")

#: progress(file_path, bytes_done, bytes_total)
FileProgress = Callable[[str, int, int], None]


class ServicePorts(Struct):
    """The AWS clients the local service needs (injected; built by the caller)."""

    transfer: TransferClient
    secrets: SecretsManagerClient
    s3: S3Client
    store: StatusStore
    publisher: StatusPublisher
    account_id: str


class BuiltinConnectorService:
    """StartFileTransfer & co. on our asyncssh engine, with AWS's names and limits."""

    def __init__(
        self,
        ports: ServicePorts,
        *,
        files_per_connection: int = 4,
        engine_options: dict[str, Any] | None = None,
        endpoint_options: dict[str, Any] | None = None,
    ) -> None:
        self.ports = ports
        self.files_per_connection = files_per_connection
        self.engine_options = dict(engine_options or {})
        self.endpoint_options = dict(endpoint_options or {})
        # The service's own blocking calls (describe, secret, status writes, publishing, a
        # listing's output) are small ones; each engine has a bridge for its S3 data calls.
        self._bridge = Bridge(name="connector-aws")
        self._engines = EngineRegistry(
            lambda connector_id: self._bridge.run(
                describe_connector, self.ports.transfer, connector_id
            ),
            # building reads the connector's secret: a blocking call, kept off the loop
            lambda config: self._bridge.run(self._new_engine, config),
        )
        # Sessions belong to one event loop: the sync API runs everything on this one, so
        # connections are reused across calls (and across warm Lambda invocations).
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    # --- plumbing ------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the service's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Close every connection and stop the loop."""
        if self._loop.is_closed():
            return

        self.run(self._engines.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._bridge.close(wait=False)

    def __enter__(self) -> BuiltinConnectorService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _endpoint(self, config: ConnectorConfig) -> Endpoint:
        creds = load_credentials(self.ports.secrets, config.user_secret_id)
        return Endpoint(
            host=config.host,
            port=config.port,
            credentials=creds,
            policy=HostKeyPolicy(config.trusted_host_keys),
            **self.endpoint_options,
        )

    def _new_engine(self, config: ConnectorConfig) -> TransferEngine:
        pool = SessionPool(
            self._endpoint(config),
            max_connections=config.max_concurrent_connections,
            files_per_connection=self.files_per_connection,
        )
        return TransferEngine(pool, self.ports.s3, **self.engine_options)

    # --- StartFileTransfer ---------------------------------------------------------------

    def start_file_transfer(self, **kwargs: Any) -> dict[str, str]:
        """boto3's ``start_file_transfer`` (``ConnectorId``, ``RetrieveFilePaths`` +
        ``LocalDirectoryPath`` or ``SendFilePaths`` + ``RemoteDirectoryPath``).

        Returns ``{"TransferId"}`` once every file is final.
        """
        records = self.run(
            self.file_transfer(
                kwargs["ConnectorId"],
                retrieve_file_paths=kwargs.get("RetrieveFilePaths"),
                local_directory_path=kwargs.get("LocalDirectoryPath"),
                send_file_paths=kwargs.get("SendFilePaths"),
                remote_directory_path=kwargs.get("RemoteDirectoryPath"),
            )
        )
        return {"TransferId": records[0].transfer_id}

    async def file_transfer(
        self,
        connector_id: str,
        *,
        retrieve_file_paths: Sequence[str] | None = None,
        local_directory_path: str | None = None,
        send_file_paths: Sequence[str] | None = None,
        remote_directory_path: str | None = None,
        progress: FileProgress | None = None,
    ) -> list[FileRecord]:
        """Run one transfer to completion; returns each file's final record."""
        request = check_transfer_request(
            retrieve_file_paths=retrieve_file_paths,
            local_directory_path=local_directory_path,
            send_file_paths=send_file_paths,
            remote_directory_path=remote_directory_path,
        )
        records = await self.plan_file_transfer(connector_id, request)
        await self.run_file_transfer(records, progress)
        return records

    async def plan_file_transfer(
        self, connector_id: str, request: TransferRequest
    ) -> list[FileRecord]:
        """A new transfer's QUEUED records (the connector is looked up; nothing moves yet)."""
        config = await self._engines.config(connector_id)
        transfer_id = str(uuid.uuid4())
        records = [
            FileRecord(
                operation=request.operation,
                connector_id=connector_id,
                connector_arn=config.arn,
                account_id=self.ports.account_id,
                transfer_id=transfer_id,
                url=config.url,
                file_path=path,
                directory_field=request.directory_field,
                directory=request.directory,
                index=index,
            )
            for index, path in enumerate(request.paths)
        ]
        if request.operation == "RETRIEVE":
            for record in records:
                record.bucket = request.bucket
                record.key = join_key(request.prefix, posixpath.basename(record.file_path))
        return records

    async def run_file_transfer(
        self, records: list[FileRecord], progress: FileProgress | None = None
    ) -> None:
        """Move every file of a planned transfer to its final state (stored and published)."""
        _, engine = await self._engines.borrow(records[0].connector_id)
        await self._run_files(engine, records, progress)

    async def _run_files(
        self, engine: TransferEngine, records: list[FileRecord], progress: FileProgress | None
    ) -> None:
        """Every file of a borrowed engine's call to its final state, then the engine back
        and the final states stored and published."""
        flusher = StatusFlusher(self.ports.store, records, bridge=self._bridge)
        flushing = asyncio.ensure_future(flusher.run())
        try:
            await asyncio.gather(*(self._run_file(engine, r, flusher, progress) for r in records))
        finally:
            await self._engines.give_back(engine)
            # the last IN_PROGRESS write must land before the final states
            flusher.stop.set()
            flusher.changed.set()
            await flushing
        await self._bridge.run(self._finish, records)

    @staticmethod
    async def _run_file(
        engine: TransferEngine,
        record: FileRecord,
        flusher: StatusFlusher,
        progress: FileProgress | None,
    ) -> None:
        """One file of a transfer, to its final state; a failure stays with its file."""

        def report(done: int, total: int) -> None:
            if progress:
                progress(record.file_path, done, total)

        record.status = FileTransferStatus.IN_PROGRESS
        record.start_time = iso_now()
        flusher.changed.set()
        try:
            if record.operation == "RETRIEVE":
                assert record.bucket is not None and record.key is not None
                record.bytes = await engine.retrieve(
                    record.file_path, record.bucket, record.key, report
                )
            else:
                src_bucket, key = split_s3_path(record.file_path, "SendFilePaths")
                target = posixpath.join(record.directory, posixpath.basename(key))
                record.bytes = await engine.send(src_bucket, key, target, report)
            record.status = FileTransferStatus.COMPLETED
        except FileTransferError as exc:
            record.status = FileTransferStatus.FAILED
            record.failure_code, record.failure_message = exc.failure_code, exc.failure_message
        except Exception as exc:  # one file's bug must not fail its siblings
            log.exception(
                "transfer %s: %s failed unexpectedly", record.transfer_id, record.file_path
            )
            record.status = FileTransferStatus.FAILED
            record.failure_code = "INTERNAL_ERROR"
            record.failure_message = f"{type(exc).__name__}: {exc}"
        record.end_time = iso_now()

    def _finish(self, records: list[FileRecord]) -> None:
        self.ports.store.save_many(records)
        try:
            self.ports.publisher.publish_many(records)
        except IngestError:
            # The status is already stored; a missing log line must not fail the transfer.
            log.exception("could not publish the status of transfer %s", records[0].transfer_id)

    # --- ListFileTransferResults ---------------------------------------------------------

    def list_file_transfer_results(self, **kwargs: Any) -> dict[str, Any]:
        """boto3's ``list_file_transfer_results`` (``ConnectorId``, ``TransferId``)."""
        results = self.ports.store.results(kwargs["ConnectorId"], kwargs["TransferId"])
        if results is None:
            raise TransferNotFoundError(kwargs["ConnectorId"], kwargs["TransferId"])
        return {"FileTransferResults": results}

    # --- StartDirectoryListing -----------------------------------------------------------

    def start_directory_listing(self, **kwargs: Any) -> dict[str, str]:
        """boto3's ``start_directory_listing``: writes
        ``<OutputDirectoryPath>/<connector-id>-<listing-id>.json`` and returns its name."""
        return self.run(
            self.directory_listing(
                kwargs["ConnectorId"],
                kwargs["RemoteDirectoryPath"],
                kwargs["OutputDirectoryPath"],
                max_items=kwargs.get("MaxItems"),
            )
        )

    async def directory_listing(
        self,
        connector_id: str,
        remote_directory_path: str,
        output_directory_path: str,
        *,
        max_items: int | None = None,
    ) -> dict[str, str]:
        """List one remote directory into an S3 JSON file in AWS's format."""
        run = await self.plan_directory_listing(
            connector_id, remote_directory_path, output_directory_path, max_items=max_items
        )
        return await self.run_directory_listing(run)

    async def plan_directory_listing(
        self,
        connector_id: str,
        remote_directory_path: str,
        output_directory_path: str,
        *,
        max_items: int | None = None,
    ) -> ListingRun:
        """A new listing, checked and named (the connector is looked up; nothing is listed)."""
        limit = DEFAULT_LISTING_ITEMS if max_items is None else int(max_items)
        if not 1 <= limit <= MAX_LISTING_ITEMS:
            raise TransferRequestError(f"MaxItems must be 1 to {MAX_LISTING_ITEMS}, got {limit}")
        bucket, prefix = split_s3_path(output_directory_path, "OutputDirectoryPath")
        config = await self._engines.config(connector_id)
        return ListingRun(
            connector_id=connector_id,
            connector_arn=config.arn,
            listing_id=str(uuid.uuid4()),
            url=config.url,
            remote_directory_path=remote_directory_path,
            output_directory_path=output_directory_path,
            max_items=limit,
            start_time=iso_now(),
            output_bucket=bucket,
            output_prefix=prefix,
        )

    async def run_directory_listing(self, run: ListingRun) -> dict[str, str]:
        """Write a planned listing's output file and publish its event."""
        return await self._with_engine(
            run.connector_id,
            lambda engine: list_into_s3(
                run, engine, self.ports.s3, self.ports.publisher, self._bridge
            ),
        )

    # --- remote delete / move ------------------------------------------------------------

    def start_remote_delete(self, **kwargs: Any) -> dict[str, str]:
        """boto3's ``start_remote_delete`` (``ConnectorId``, ``DeletePath``)."""
        self.run(self.remote_delete(kwargs["ConnectorId"], kwargs["DeletePath"]))
        return {"DeleteId": str(uuid.uuid4())}

    def start_remote_move(self, **kwargs: Any) -> dict[str, str]:
        """boto3's ``start_remote_move`` (``ConnectorId``, ``SourcePath``, ``TargetPath``)."""
        self.run(
            self.remote_move(kwargs["ConnectorId"], kwargs["SourcePath"], kwargs["TargetPath"])
        )
        return {"MoveId": str(uuid.uuid4())}

    async def remote_delete(self, connector_id: str, path: str) -> None:
        """Delete one remote file."""
        await self._with_engine(connector_id, lambda engine: engine.remote_delete(path))

    async def remote_move(self, connector_id: str, source: str, target: str) -> None:
        """Move (rename) one remote file."""
        await self._with_engine(connector_id, lambda engine: engine.remote_move(source, target))

    async def _with_engine(
        self, connector_id: str, call: Callable[[TransferEngine], Awaitable[T]]
    ) -> T:
        _, engine = await self._engines.borrow(connector_id)
        try:
            return await call(engine)
        finally:
            await self._engines.give_back(engine)

    # --- TestConnection ------------------------------------------------------------------

    def test_connection(self, **kwargs: Any) -> dict[str, Any]:
        """boto3's ``test_connection``: Status OK|ERROR and the server's host key."""
        return self.run(self.check_connection(kwargs["ConnectorId"]))

    async def check_connection(self, connector_id: str) -> dict[str, Any]:
        """Connect and authenticate once; report the presented host key."""
        config = await self._bridge.run(describe_connector, self.ports.transfer, connector_id)
        endpoint = await self._bridge.run(self._endpoint, config)  # reads the secret
        return {"ConnectorId": connector_id, **await connection_report(endpoint)}
