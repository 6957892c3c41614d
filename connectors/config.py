"""Connector configuration, kept where AWS keeps it.

The connector itself is a Transfer Family connector (``transfer.create_connector``: ``Url``,
``SftpConfig.TrustedHostKeys``, ``SftpConfig.UserSecretId``, ``MaxConcurrentConnections``) and
its credentials are a Secrets Manager secret ``{"Username", "PrivateKey" | "Password"}``.
Locally both services are moto's, so the same calls work against ``ingest up``.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct

from connectors.errors import ConnectorNotFoundError
from connectors.hostkeys import HostKeyPolicy
from ingest.adapters.sdk import error_code, is_not_found, translated, unavailable
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient
    from mypy_boto3_transfer.client import TransferClient

#: secrets this package creates (and so may delete with their connector).
SECRET_PREFIX = "sftp-ingest/connectors/"
MAX_CONNECTIONS_RANGE = (1, 5)


class ConnectorConfig(Struct, frozen=True):
    """What a transfer needs to know about a connector."""

    connector_id: str
    arn: str
    url: str
    host: str
    port: int
    user_secret_id: str
    trusted_host_keys: list[str]
    max_concurrent_connections: int = 1
    access_role: str | None = None
    logging_role: str | None = None


class Credentials(Struct, frozen=True):
    """The login of a connector (never printed: ``repr`` hides the secret parts)."""

    username: str
    private_key: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        kinds = [name for name in ("private_key", "password") if getattr(self, name)]
        return f"Credentials(username={self.username!r}, secrets={kinds})"


def parse_sftp_url(url: str) -> tuple[str, int]:
    """``sftp://host[:port]`` → (host, port), with a clear error for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "sftp" or not parts.hostname:
        raise ConfigError(f"connector URL must look like sftp://HOST[:PORT], got {url!r}")
    if parts.path not in ("", "/") or parts.username or parts.query:
        raise ConfigError(f"connector URL takes only a host and port, got {url!r}")
    try:
        port = parts.port or 22
    except ValueError as exc:
        raise ConfigError(f"connector URL has an invalid port: {url!r}") from exc
    return parts.hostname, port


def _aws_error(
    exc: ClientError | BotoCoreError, operation: str, connector_id: str | None = None
) -> Exception:
    code = error_code(exc)
    if code == "ResourceNotFoundException" and connector_id:
        return ConnectorNotFoundError(connector_id)
    if code in ("ValidationException", "InvalidRequestException", "InvalidParameterException"):
        return ConfigError(f"{operation} refused: {exc}")
    return unavailable(exc, "transfer", operation, connector_id or "")


def create_connector(
    transfer: TransferClient,
    secrets: SecretsManagerClient,
    *,
    url: str,
    username: str,
    trusted_host_keys: list[str],
    access_role: str,
    private_key: str | None = None,
    password: str | None = None,
    max_connections: int = 1,
    logging_role: str | None = None,
) -> str:
    """Store the credentials as a secret and create the connector; returns its id."""
    parse_sftp_url(url)
    HostKeyPolicy(trusted_host_keys)  # rejects unparseable keys before anything is created
    if (private_key is None) == (password is None):
        raise ConfigError("a connector needs exactly one of a private key or a password")
    low, high = MAX_CONNECTIONS_RANGE
    if not low <= max_connections <= high:
        raise ConfigError(f"MaxConcurrentConnections must be {low}-{high}, got {max_connections}")
    body: dict[str, str] = {"Username": username}
    if private_key is not None:
        body["PrivateKey"] = private_key
    else:
        body["Password"] = password or ""
    name = f"{SECRET_PREFIX}{uuid.uuid4().hex[:12]}"
    with translated("secretsmanager", "CreateSecret", name):
        secret_arn = secrets.create_secret(Name=name, SecretString=json.dumps(body))["ARN"]
    kwargs: dict[str, Any] = {
        "Url": url,
        "AccessRole": access_role,
        "SftpConfig": {
            "UserSecretId": secret_arn,
            "TrustedHostKeys": list(trusted_host_keys),
            "MaxConcurrentConnections": max_connections,
        },
    }
    if logging_role:
        kwargs["LoggingRole"] = logging_role
    try:
        return transfer.create_connector(**kwargs)["ConnectorId"]
    except (ClientError, BotoCoreError) as exc:
        with translated("secretsmanager", "DeleteSecret", secret_arn):
            secrets.delete_secret(SecretId=secret_arn, ForceDeleteWithoutRecovery=True)
        raise _aws_error(exc, "CreateConnector") from exc


def describe_connector(transfer: TransferClient, connector_id: str) -> ConnectorConfig:
    """A connector's configuration, or :class:`ConnectorNotFoundError`."""
    try:
        found = transfer.describe_connector(ConnectorId=connector_id)["Connector"]
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc, "DescribeConnector", connector_id) from exc
    sftp: dict[str, Any] = dict(found.get("SftpConfig") or {})
    if not sftp.get("UserSecretId"):
        raise ConfigError(f"connector {connector_id} has no SftpConfig.UserSecretId")
    host, port = parse_sftp_url(found["Url"])
    return ConnectorConfig(
        connector_id=found["ConnectorId"],
        arn=found["Arn"],
        url=found["Url"],
        host=host,
        port=port,
        user_secret_id=sftp["UserSecretId"],
        trusted_host_keys=list(sftp.get("TrustedHostKeys") or []),
        max_concurrent_connections=int(sftp.get("MaxConcurrentConnections") or 1),
        access_role=found.get("AccessRole"),
        logging_role=found.get("LoggingRole"),
    )


def list_connectors(transfer: TransferClient) -> list[dict[str, str]]:
    """``[{ConnectorId, Url, Arn}]`` of every connector."""
    try:
        return [
            {"ConnectorId": c["ConnectorId"], "Url": c.get("Url", ""), "Arn": c["Arn"]}
            for page in transfer.get_paginator("list_connectors").paginate()
            for c in page.get("Connectors", [])
        ]
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc, "ListConnectors") from exc


def delete_connector(
    transfer: TransferClient, secrets: SecretsManagerClient, connector_id: str
) -> None:
    """Delete a connector, and its secret when this package created it."""
    config = describe_connector(transfer, connector_id)
    try:
        transfer.delete_connector(ConnectorId=connector_id)
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc, "DeleteConnector", connector_id) from exc
    if SECRET_PREFIX in config.user_secret_id:
        with translated("secretsmanager", "DeleteSecret", config.user_secret_id):
            secrets.delete_secret(SecretId=config.user_secret_id, ForceDeleteWithoutRecovery=True)


def load_credentials(secrets: SecretsManagerClient, secret_id: str) -> Credentials:
    """Read ``{"Username", "PrivateKey" | "Password"}`` from Secrets Manager."""
    try:
        raw = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    except (ClientError, BotoCoreError) as exc:
        if is_not_found(exc):
            raise ConfigError(f"connector secret {secret_id} does not exist") from exc
        raise unavailable(exc, "secretsmanager", "GetSecretValue", secret_id) from exc
    try:
        data = json.loads(raw)
        username = data["Username"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"connector secret {secret_id} must be JSON with Username and PrivateKey or Password"
        ) from exc
    return Credentials(
        username=username, private_key=data.get("PrivateKey"), password=data.get("Password")
    )
