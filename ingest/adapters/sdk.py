"""The one translator of AWS SDK errors into the project's exception tree.

Adapters call AWS inside :func:`translated`: a ``ClientError`` or ``BotoCoreError`` (a
connection reset, a timeout: botocore's standard retry mode has already retried those)
becomes a :class:`~ingest.errors.StorageUnavailableError` that names the service, the
operation and what it was about; any other exception goes on untouched. Where an adapter
must tell one SDK error from another (a condition that did not hold, an object that does not
exist), it asks :func:`error_code` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from ingest.errors import StorageUnavailableError

#: What "does not exist" is called across S3 (and its 404s), DynamoDB, Transfer, Secrets Manager.
NOT_FOUND = frozenset(
    {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound", "ResourceNotFoundException"}
)
CONDITION_FAILED = "ConditionalCheckFailedException"


def error_code(exc: BaseException) -> str:
    """The service's error code of a ``ClientError`` ("" for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    """The service's own message of a ``ClientError`` (else the exception's text)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return str(exc)


def is_not_found(exc: BaseException) -> bool:
    """Whether the error says the thing asked for does not exist."""
    return error_code(exc) in NOT_FOUND


def is_condition_failure(exc: BaseException) -> bool:
    """Whether a conditional write (or a transaction with one) was refused by its condition."""
    code = error_code(exc)
    if code == CONDITION_FAILED:
        return True
    if code == "TransactionCanceledException" and isinstance(exc, ClientError):
        reasons = exc.response.get("CancellationReasons") or []
        if reasons:
            return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
        return "ConditionalCheckFailed" in str(exc)
    return False


def unavailable(
    exc: ClientError | BotoCoreError, service: str, operation: str, about: str = ""
) -> StorageUnavailableError:
    """The retryable error for an SDK failure (``about``: what the call was about)."""
    return StorageUnavailableError(service, operation, f"{about}: {exc}" if about else str(exc))


@contextmanager
def translated(service: str, operation: str, about: str = "") -> Iterator[None]:
    """Run an SDK call; its ``ClientError`` / ``BotoCoreError`` becomes retryable."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise unavailable(exc, service, operation, about) from exc
