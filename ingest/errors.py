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

from collections.abc import Mapping, Sequence
from typing import Any, Self


class IngestError(Exception):
    """Base of every error this project raises on purpose."""


class RetryableError(IngestError):
    """A failure that may go away if the same work is tried again."""


class PermanentError(IngestError):
    """A failure that the same input will always hit again."""


# --- configuration -------------------------------------------------------------------------


class ConfigError(PermanentError):
    """A feeds file, jobs file, setting or template value is invalid.

    ``errors`` holds every problem found, each with its own ``feed`` (or ``job``) and
    ``field``; an error about one problem is its own only entry.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        feed: str | None = None,
        field: str | None = None,
        job: str | None = None,
        errors: Sequence[ConfigError] = (),
    ) -> None:
        self.message = message
        self.source = source
        self.feed = feed
        self.job = job
        self.field = field
        self.errors: list[ConfigError] = list(errors) or [self]
        where = self.where()
        super().__init__(f"{where}: {message}" if where else message)

    def where(self, *, with_source: bool = True) -> str:
        """``file F, feed 'x', field 'y'``: as much of it as is known."""
        parts = (
            f"file {self.source}" if self.source and with_source else "",
            f"feed {self.feed!r}" if self.feed else "",
            f"job {self.job!r}" if self.job else "",
            f"field {self.field!r}" if self.field else "",
        )
        return ", ".join(part for part in parts if part)

    @classmethod
    def collect(cls, problems: Sequence[Self], *, source: str | None = None) -> Self:
        """One error for all ``problems``: the problem itself when there is just one, else an
        error that lists each on its own line (with its feed or job and field)."""
        if len(problems) == 1:
            return problems[0]
        lines = [f"{len(problems)} problems:"]
        for problem in problems:
            where = problem.where(with_source=False)
            lines.append(f"  {where}: {problem.message}" if where else f"  {problem.message}")
        return cls("\n".join(lines), source=source, errors=problems)

    @staticmethod
    def describe(error: Mapping[str, Any], label: str) -> str:
        """One error of the schema library (pydantic's ``ErrorDetails``: ``type``, ``msg``,
        ``input``, ``ctx``) as a sentence about ``label``, in the words of our docs."""
        ctx = error.get("ctx") or {}
        if isinstance(ctx.get("error"), Exception):
            return str(ctx["error"])  # our own validators' sentences
        kind = str(error["type"])
        phrase = _PHRASES[kind].format(**ctx) if kind in _PHRASES else str(error["msg"])
        text = f"{label} {phrase}" if label else phrase
        if kind == "missing":
            return text
        given = repr(error.get("input"))
        return f"{text}, got {given if len(given) <= 60 else given[:57] + '...'}"


#: Schema error types in our words (anything else keeps the library's own sentence).
_PHRASES = {
    "missing": "is required",
    "extra_forbidden": "is not a known setting",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be a string",
    "string_too_short": "must be non-empty",
    "too_short": "must be non-empty",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "enum": "must be one of {expected}",
    "literal_error": "must be one of {expected}",
}


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


class ArchiveRefusedError(PermanentError):
    """An archive is not expanded (zip slip, an encrypted member, a zip bomb limit...)."""

    def __init__(self, message: str, *, key: str, rule: str) -> None:
        self.key = key
        self.rule = rule
        super().__init__(f"{key}: {message}")


class DecryptionRefusedError(PermanentError):
    """A PGP file is not decrypted (no key, a wrong key, a corrupt message, a bad signature...)."""

    def __init__(self, message: str, *, key: str, rule: str) -> None:
        self.key = key
        self.rule = rule
        super().__init__(f"{key}: {message}")


class HeaderError(PermanentError):
    """A CSV file's header cannot be read, or lacks a column the feed requires."""


class TrailerError(PermanentError):
    """A fixed-width file's trailer is missing, unreadable, or declares another record count."""


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


class UnknownFileError(PermanentError):
    """The ledger has no entry for the key a command named."""


class StorageUnavailableError(RetryableError):
    """An AWS service call failed in a way that is worth retrying (throttling, 5xx, I/O)."""

    def __init__(self, service: str, operation: str, detail: str) -> None:
        self.service = service
        self.operation = operation
        self.detail = detail
        super().__init__(f"{service} {operation} failed: {detail}")


class EventsRefusedError(StorageUnavailableError):
    """EventBridge took a PutEvents call but refused some of its entries (throttled, internal)."""


class StaleVersionError(PermanentError):
    """A chunk belongs to an older version of a file that has since been replaced."""


class LeaseBusyError(RetryableError):
    """An older version of the file is still being written; this chunk will come back."""


class LeaseLapsedError(RetryableError):
    """A chunk could not renew its lease in time, so it stopped writing; it will come back."""
