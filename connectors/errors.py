"""Connector errors: narrow subclasses of the one tree in :mod:`ingest.errors`."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.errors import ConfigError, IngestError, PermanentError, RetryableError


class HostKeyFormatError(ConfigError):
    """A trusted host key is in none of the accepted forms."""


class ConnectorNotFoundError(ConfigError):
    """No connector with this id exists."""

    def __init__(self, connector_id: str) -> None:
        self.connector_id = connector_id
        super().__init__(f"connector {connector_id} does not exist")


class TransferNotFoundError(ConfigError):
    """No transfer with this id exists for this connector (results expired or never were)."""

    def __init__(self, connector_id: str, transfer_id: str) -> None:
        self.connector_id = connector_id
        self.transfer_id = transfer_id
        super().__init__(f"transfer {transfer_id} of connector {connector_id} is unknown")


class TransferRequestError(PermanentError):
    """A transfer request breaks the API's limits (the ValidationException of AWS)."""


class FileTransferError(IngestError):
    """One file of a transfer failed; ``failure_code`` is AWS's name for the reason."""

    def __init__(self, failure_code: str, message: str) -> None:
        self.failure_code = failure_code
        self.failure_message = message
        super().__init__(f"{failure_code}: {message}")


class PermanentFileTransferError(FileTransferError, PermanentError):
    """A file failure that retrying cannot fix (missing file, bad credentials, host key)."""


class RetryableFileTransferError(FileTransferError, RetryableError):
    """A file failure worth retrying on a new connection (dropped link, timeout)."""


class HostKeyMismatchError(PermanentFileTransferError):
    """The server presented a host key that none of the trusted keys matches."""

    def __init__(self, host: str, expected: Sequence[str], presented: Sequence[str]) -> None:
        self.host = host
        self.expected = list(expected)
        self.presented = list(presented)
        super().__init__(
            "HOST_KEY_MISMATCH",
            f"host key of {host} is not trusted: presented {', '.join(presented)}; "
            f"expected one of {', '.join(expected)}",
        )
