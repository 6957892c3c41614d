"""The local Transfer API's answers, without a server: AWS's error shapes for our exceptions,
and the requests it leaves to moto."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.parsers import create_parser

from connectors.errors import ConnectorNotFoundError, TransferNotFoundError, TransferRequestError
from ingest.errors import StorageUnavailableError
from ingest_local.transfer_api import SERVED, TransferConnectorApi, transfer_model


def _parsed(operation: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    """What botocore makes of the answer (as a boto3 client would)."""
    model = transfer_model().operation_model(operation)
    parser = create_parser("json")
    response = {
        "status_code": status,
        "headers": {"x-amzn-requestid": "r"},
        "body": json.dumps(body).encode(),
    }
    return dict(parser.parse(response, model.output_shape))


class _Failing:
    """A service whose every call raises ``exc``."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            raise self.exc

        return call


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (ConnectorNotFoundError("c-0123456789abcdef0"), "ResourceNotFoundException", 400),
        (TransferNotFoundError("c-0123456789abcdef0", "t-1"), "ResourceNotFoundException", 400),
        (
            TransferRequestError("RetrieveFilePaths takes 1 to 10 paths"),
            "InvalidRequestException",
            400,
        ),
        (StorageUnavailableError("dynamodb", "Query", "down"), "ServiceUnavailableException", 503),
        (KeyError("bug"), "InternalServiceError", 500),
    ],
)
@pytest.mark.parametrize("operation", sorted(SERVED))
def test_every_failure_is_a_declared_error_of_the_operation(
    operation: str, exc: Exception, code: str, status: int
) -> None:
    api = TransferConnectorApi(lambda environ, start: [b""])
    api.attach(_Failing(exc))  # type: ignore[arg-type]
    answered_status, body = api.handle(operation, json.dumps(_minimal(operation)).encode())
    assert (answered_status, body["__type"]) == (status, code)
    declared = {s.name: s for s in transfer_model().operation_model(operation).error_shapes}
    assert code in declared
    assert set(declared[code].required_members) <= set(body)
    error = _parsed(operation, answered_status, body)["Error"]
    assert error["Code"] == code and error["Message"]


def test_unparseable_or_invalid_requests_are_invalid_request_exceptions() -> None:
    api = TransferConnectorApi(lambda environ, start: [b""])
    api.attach(_Failing(AssertionError("never called")))  # type: ignore[arg-type]
    status, body = api.handle("StartFileTransfer", b"{not json")
    assert (status, body["__type"]) == (400, "InvalidRequestException")
    status, body = api.handle(
        "StartFileTransfer", json.dumps({"RetrieveFilePaths": ["/a"]}).encode()
    )
    assert (status, body["__type"]) == (400, "InvalidRequestException")
    assert "ConnectorId" in body["Message"]


def test_before_it_is_attached_the_api_is_unavailable_and_other_requests_go_to_moto() -> None:
    seen: list[str] = []

    def moto(environ: dict[str, Any], start: Any) -> list[bytes]:
        seen.append(environ["HTTP_X_AMZ_TARGET"])
        start("200 OK", [])
        return [b"{}"]

    api = TransferConnectorApi(moto)
    status, body = api.handle(
        "StartFileTransfer", json.dumps(_minimal("StartFileTransfer")).encode()
    )
    assert (status, body["__type"]) == (503, "ServiceUnavailableException")

    def request(target: str) -> str:
        statuses: list[str] = []
        environ = {
            "HTTP_X_AMZ_TARGET": target,
            "CONTENT_LENGTH": "2",
            "wsgi.input": io.BytesIO(b"{}"),
        }
        list(api(environ, lambda status, headers: statuses.append(status)))  # type: ignore[arg-type]
        return statuses[0]

    assert request("TransferService.DescribeConnector") == "200 OK"
    assert request("TransferService.StartFileTransfer").startswith("400")  # no ConnectorId
    assert seen == ["TransferService.DescribeConnector"]


def _minimal(operation: str) -> dict[str, Any]:
    """The operation's required members, filled in."""
    shape = transfer_model().operation_model(operation).input_shape
    values = {
        "ConnectorId": "c-0123456789abcdef0",
        "TransferId": "t-1",
        "RemoteDirectoryPath": "/out",
        "OutputDirectoryPath": "/b/l",
        "SourcePath": "/a",
        "TargetPath": "/b",
        "DeletePath": "/a",
    }
    return {name: values[name] for name in (shape.required_members if shape else [])}
