"""The Transfer connector API on the local stack's AWS endpoint, which moto does not have.

moto serves Transfer's servers, users and connectors. In front of moto's WSGI app,
:class:`TransferConnectorApi` takes the requests whose ``X-Amz-Target`` is one of the
connector operations (:data:`SERVED`) and answers them from
:class:`~connectors.background.BackgroundConnectorService`, our engine with AWS's timing:
the call returns a ``TransferId`` / ``ListingId`` / ``MoveId`` / ``DeleteId`` at once, the
work runs in the background, and its outcome arrives through ``ListFileTransferResults``,
the connector's CloudWatch log group and EventBridge events from ``aws.transfer`` (so the
template's rule sends them to the TransferStatusFunction, as in AWS). Every other request
goes to moto unchanged; the service reads the connector and its secret from moto through
boto3, like any client.

Errors are AWS's (JSON 1.1 ``__type``), each one an error shape that botocore's model of the
operation declares, with its required members, so boto3 raises the same ``ClientError``.
The engine's transfer results live in a table of their own (:func:`results_table`), not in
the stack's ledger: the ledger learns of managed transfers only from the events, as in AWS.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore import xform_name
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, ServiceModel
from botocore.session import get_session
from botocore.validate import validate_parameters
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from connectors.background import BackgroundConnectorService
from connectors.errors import ConnectorNotFoundError, TransferNotFoundError
from connectors.wiring import build_builtin_service
from ingest.adapters.aws import AwsTarget
from ingest.domain.events import TRANSFER_EVENT_SOURCE
from ingest.errors import ConfigError, PermanentError, RetryableError
from ingest_local.tables import create_pk_sk_table

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("ingest_local.transfer_api")

TARGET_PREFIX = "TransferService."
#: the operations served here (moto has none of them)
SERVED = frozenset(
    {
        "StartFileTransfer",
        "StartDirectoryListing",
        "ListFileTransferResults",
        "StartRemoteMove",
        "StartRemoteDelete",
        "TestConnection",
    }
)
JSON_11 = "application/x-amz-json-1.1"
#: HTTP status of the server-side error shapes (the model marks them ``fault``)
_FAULT_STATUS = {"InternalServiceError": 500, "ServiceUnavailableException": 503}


@cache
def transfer_model() -> ServiceModel:
    """botocore's model of the Transfer API (the shapes of requests, answers and errors)."""
    return get_session().get_service_model("transfer")


class ApiError(Exception):
    """An AWS error answer: one of the operation's declared error shapes."""

    def __init__(self, code: str, message: str, **members: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.members = {"Message": message, **members}

    def answer(self, operation: OperationModel) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) as AWS sends it for this operation."""
        shapes = {shape.name: shape for shape in operation.error_shapes}
        shape = shapes.get(self.code)
        if shape is None:  # our bug, not the caller's: say so in AWS's terms
            return InternalError(f"undeclared error {self.code}").answer(operation)
        body = {"__type": self.code, **self.members}
        missing = [name for name in shape.required_members if name not in body]
        body.update({name: "" for name in missing})
        return _FAULT_STATUS.get(self.code, 400), body


class InternalError(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__("InternalServiceError", message)


def _translate(exc: Exception) -> ApiError:
    """Our engine's exceptions as AWS's errors."""
    if isinstance(exc, ConnectorNotFoundError):
        return ApiError(
            "ResourceNotFoundException",
            f"Unknown connector: {exc.connector_id}",
            Resource=exc.connector_id,
            ResourceType="Connector",
        )
    if isinstance(exc, TransferNotFoundError):
        return ApiError(
            "ResourceNotFoundException",
            f"Unknown transfer {exc.transfer_id} for connector {exc.connector_id}",
            Resource=exc.transfer_id,
            ResourceType="Transfer",
        )
    if isinstance(exc, ConfigError | PermanentError):
        return ApiError("InvalidRequestException", str(exc))
    if isinstance(exc, RetryableError):
        return ApiError("ServiceUnavailableException", str(exc))
    return InternalError(f"{type(exc).__name__}: {exc}")


class TransferConnectorApi:
    """WSGI middleware: the connector operations from our engine, the rest from ``app``."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self._service: BackgroundConnectorService | None = None
        self._lock = threading.Lock()

    def attach(self, service: BackgroundConnectorService) -> None:
        """Serve the connector operations from ``service`` from now on."""
        with self._lock:
            self._service = service

    def close(self) -> None:
        """Stop serving (ServiceUnavailableException from now on) and close the service:
        background transfers are cancelled and waited for."""
        with self._lock:
            service, self._service = self._service, None
        if service is not None:
            service.close()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        operation = target.removeprefix(TARGET_PREFIX)
        if not target.startswith(TARGET_PREFIX) or operation not in SERVED:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        status, answer = self.handle(operation, body)
        data = json.dumps(answer, default=str).encode()
        reason = "OK" if status == 200 else "Error"
        start_response(
            f"{status} {reason}",
            [
                ("Content-Type", JSON_11),
                ("Content-Length", str(len(data))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [data]

    def handle(self, operation: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """One connector operation: (HTTP status, JSON answer)."""
        model = transfer_model().operation_model(operation)
        try:
            return 200, self._call(model, body)
        except ApiError as exc:
            return exc.answer(model)
        except Exception as exc:
            error = _translate(exc)
            if isinstance(error, InternalError):
                log.exception("Transfer %s failed", operation)
            return error.answer(model)

    def _call(self, model: OperationModel, body: bytes) -> dict[str, Any]:
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise ApiError("InvalidRequestException", f"the body is not JSON: {exc}") from exc
        try:
            if model.input_shape is not None:
                validate_parameters(params, model.input_shape)
        except ParamValidationError as exc:
            raise ApiError("InvalidRequestException", str(exc)) from exc
        service = self._service
        if service is None:
            raise ApiError("ServiceUnavailableException", "the local Transfer API is not ready")
        method: Callable[..., dict[str, Any]] = getattr(service, _method_name(model))
        return method(**params)


def _method_name(model: OperationModel) -> str:
    """boto3's (and so our service's) method name of an operation."""
    return str(xform_name(model.name))


def results_table(stack_name: str) -> str:
    """The table of the emulated service's own transfer results (not the stack's ledger)."""
    return f"{stack_name}-local-transfer-service"


def start_transfer_service(aws: AwsTarget, stack_name: str) -> BackgroundConnectorService:
    """The engine behind the local Transfer API: its results table, and its events from
    ``aws.transfer`` like the managed service's."""
    table = results_table(stack_name)
    create_pk_sk_table(aws.shared_client("dynamodb"), table)
    return build_builtin_service(
        aws,
        table,
        event_source=TRANSFER_EVENT_SOURCE,
        service_class=BackgroundConnectorService,
    )


class LocalAwsEndpoint:
    """moto's server (what ``ThreadedMotoServer`` runs) with the Transfer connector API in
    front of it; ``start()``, ``get_host_and_port()``, ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = TransferConnectorApi(DomainDispatcherApplication(create_backend_app))
        self._host, self._port = host, port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = make_server(
            self._host, self._port, self.api, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="aws-endpoint", daemon=True
        )
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Close the Transfer API (cancelling its background work), then the server."""
        self.api.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
