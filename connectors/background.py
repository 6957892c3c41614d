"""AWS's asynchronous connector API on our engine: every ``start_*`` call returns at once.

:class:`BackgroundConnectorService` is :class:`~connectors.service.BuiltinConnectorService`
with the managed service's timing. The request is checked and the connector looked up before
the call returns, so a bad request or an unknown connector is refused by the call itself, as
AWS refuses it; the work then runs on the service's loop and its outcome arrives the way AWS
reports it:

* file transfers: ``ListFileTransferResults`` (``QUEUED`` as soon as the call returns, then
  ``IN_PROGRESS``, ``COMPLETED`` | ``FAILED``), one JSON event per file in the connector's
  CloudWatch log group and an ``SFTP Connector File … Completed|Failed`` EventBridge event;
* directory listings: the output file in S3, then ``SFTP Connector Directory Listing …``;
* remote moves and deletes: ``SFTP Connector Remote Move|Delete Completed|Failed``.

The local stack serves it on its AWS endpoint (the emulator's Transfer API). :meth:`close`
cancels whatever is still running and waits for it to stop.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from connectors.errors import FileTransferError
from connectors.request_rules import check_transfer_request
from connectors.service import BuiltinConnectorService
from ingest.adapters.publisher import iso_now
from ingest.errors import IngestError

log = logging.getLogger(__name__)

#: how long :meth:`BackgroundConnectorService.close` waits for cancelled work to stop
CANCEL_WAIT_SECONDS = 10.0


class BackgroundConnectorService(BuiltinConnectorService):
    """``start_*`` return an id at once; the work runs in the background (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the calls ---------------------------------------------------------------------------

    def start_file_transfer(self, **kwargs: Any) -> dict[str, str]:
        """boto3's ``start_file_transfer``: the ``TransferId`` of a transfer now QUEUED."""
        request = check_transfer_request(
            retrieve_file_paths=kwargs.get("RetrieveFilePaths"),
            local_directory_path=kwargs.get("LocalDirectoryPath"),
            send_file_paths=kwargs.get("SendFilePaths"),
            remote_directory_path=kwargs.get("RemoteDirectoryPath"),
        )
        records = self.run(self.plan_file_transfer(kwargs["ConnectorId"], request))
        transfer_id = records[0].transfer_id
        # Listed as QUEUED before the call returns: a caller may ask for results at once.
        self.ports.store.save_many(records)
        self._background(self.run_file_transfer(records), f"transfer {transfer_id}")
        return {"TransferId": transfer_id}

    def start_directory_listing(self, **kwargs: Any) -> dict[str, str]:
        """boto3's ``start_directory_listing``: the listing's id and output file name; the
        file appears in ``OutputDirectoryPath`` when the listing is done."""
        run = self.run(
            self.plan_directory_listing(
                kwargs["ConnectorId"],
                kwargs["RemoteDirectoryPath"],
                kwargs["OutputDirectoryPath"],
                max_items=kwargs.get("MaxItems"),
            )
        )
        self._background(self.run_directory_listing(run), f"listing {run.listing_id}")
        return {"ListingId": run.listing_id, "OutputFileName": run.output_name}

    def start_remote_delete(self, **kwargs: Any) -> dict[str, str]:
        """boto3's ``start_remote_delete``: a ``DeleteId``; the outcome is an event."""
        connector_id, path = kwargs["ConnectorId"], kwargs["DeletePath"]
        delete_id = str(uuid.uuid4())
        fields = {"operation": "DELETE", "delete-id": delete_id, "delete-path": path}
        self._remote_action(connector_id, "Delete", fields, self.remote_delete(connector_id, path))
        return {"DeleteId": delete_id}

    def start_remote_move(self, **kwargs: Any) -> dict[str, str]:
        """boto3's ``start_remote_move``: a ``MoveId``; the outcome is an event."""
        connector_id = kwargs["ConnectorId"]
        source, target = kwargs["SourcePath"], kwargs["TargetPath"]
        move_id = str(uuid.uuid4())
        fields = {
            "operation": "MOVE",
            "move-id": move_id,
            "move-source-path": source,
            "move-target-path": target,
        }
        self._remote_action(
            connector_id, "Move", fields, self.remote_move(connector_id, source, target)
        )
        return {"MoveId": move_id}

    def _remote_action(
        self,
        connector_id: str,
        verb: str,
        fields: dict[str, str],
        action: Coroutine[Any, Any, None],
    ) -> None:
        try:
            config = self.run(self._engines.config(connector_id))
        except BaseException:
            action.close()  # never awaited: the connector does not exist
            raise

        async def act_and_report() -> None:
            detail: dict[str, Any] = {
                "connector-id": connector_id,
                "url": config.url,
                **fields,
                "start-timestamp": iso_now(),
            }
            try:
                await action
            except FileTransferError as exc:
                detail.update(
                    {
                        "status-code": "FAILED",
                        "failure-code": exc.failure_code,
                        "failure-message": exc.failure_message,
                    }
                )
            else:
                detail["status-code"] = "COMPLETED"
            detail["end-timestamp"] = iso_now()
            outcome = "Completed" if detail["status-code"] == "COMPLETED" else "Failed"
            await self._bridge.run(
                self.ports.publisher.publish_event,
                f"SFTP Connector Remote {verb} {outcome}",
                detail,
                config.arn,
            )

        action_id = fields.get("move-id") or fields.get("delete-id")
        self._background(act_and_report(), f"remote {verb.lower()} {action_id}")

    # --- the background ------------------------------------------------------------------------

    def _background(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Run ``work`` on the service's loop, tracked until it ends (or close() cancels it)."""

        async def spawn() -> None:
            task = asyncio.ensure_future(_logged(work, what))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self.run(spawn())

    @property
    def running(self) -> int:
        """How many background calls are still under way."""
        return len(self._tasks)

    def close(self) -> None:
        """Cancel the calls still under way, wait for them to stop, then close the service."""
        if not self._loop.is_closed():
            self.run(self._cancel_all())
        super().close()

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
            if pending:
                log.warning("%d background connector calls did not stop", len(pending))


async def _logged(work: Coroutine[Any, Any, Any], what: str) -> None:
    """Await background work; its failure is logged (it already reported its outcome)."""
    try:
        await work
    except FileTransferError as exc:  # a listing that failed has published its event
        log.warning("%s failed: %s", what, exc)
    except IngestError:
        log.exception("%s failed", what)
    except Exception:  # a bug must not kill the loop's other work
        log.exception("%s failed unexpectedly", what)
