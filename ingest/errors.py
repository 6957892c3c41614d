"""The one exception tree of sftp-ingest.

Handlers decide what to do with a failure by its base class only:

* ``RetryableError``: the same input may succeed later (throttling, a flaky read). The
  message is reported as failed and SQS redelivers it.
* ``PermanentError``: retrying cannot help (bad configuration, corrupt input). The file is
  marked ``FAILED`` with the reason; the message still goes the way of redrive so that
  nothing disappears silently.

SDK errors are translated at the boundary with ``raise ... from exc``; unknown ones are
re-raised untouched.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of every error this project raises on purpose."""


class RetryableError(IngestError):
    """A failure that may go away if the same work is tried again."""


class PermanentError(IngestError):
    """A failure that the same input will always hit again."""


# --- configuration -------------------------------------------------------------------------


class ConfigError(PermanentError):
    """A feeds file, setting or template value is invalid."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        feed: str | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.feed = feed
        self.field = field
        where = ", ".join(
            part
            for part in (
                f"file {source}" if source else "",
                f"feed {feed!r}" if feed else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class SettingsError(ConfigError):
    """A function's environment settings are missing or malformed."""


# --- input ---------------------------------------------------------------------------------


class InvalidEventError(PermanentError):
    """An event or message does not have the shape this function expects."""


class CorruptInputError(PermanentError):
    """A file cannot be read as its feed's format at all (bad gzip stream, say)."""

    def __init__(self, message: str, *, key: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


class UnreadableRecordsError(PermanentError):
    """From some line on, a file cannot be split into records (a quote that never closes)."""

    def __init__(self, message: str, *, line: int) -> None:
        self.line = line
        super().__init__(message)


class InputLimitError(PermanentError):
    """A file exceeds one of its feed's limits (decompressed size, compression ratio)."""

    def __init__(self, message: str, *, key: str, limit: str) -> None:
        self.key = key
        self.limit = limit
        super().__init__(f"{key}: {message}")


class HeaderError(PermanentError):
    """A CSV file's header cannot be read, or lacks a column the feed requires."""


class RowError(IngestError):
    """One record is invalid; it is rejected with this reason and the rest go on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# --- storage -------------------------------------------------------------------------------


class ObjectNotFoundError(PermanentError):
    """The S3 object named by an event or message no longer exists."""

    def __init__(self, bucket: str, key: str) -> None:
        self.bucket = bucket
        self.key = key
        super().__init__(f"s3://{bucket}/{key} does not exist")


class StorageUnavailableError(RetryableError):
    """An AWS service call failed in a way that is worth retrying (throttling, 5xx, I/O)."""

    def __init__(self, service: str, operation: str, detail: str) -> None:
        self.service = service
        self.operation = operation
        self.detail = detail
        super().__init__(f"{service} {operation} failed: {detail}")


class StaleVersionError(PermanentError):
    """A chunk belongs to an older version of a file that has since been replaced."""
