"""The feeds file's schema, part one: the shared settings and checks, and each format's
options (``csv:``, ``jsonl:``, ``fixed_width:``, ``xlsx:``, ``zip:``). The feed itself and the
file are in :mod:`ingest.domain.feeds`."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ingest.domain.archives import (
    DEFAULT_MAX_EXPANDED_BYTES,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_RATIO,
    PASSWORD_SECRETS_PREFIX,
    ZipLimits,
)
from ingest.domain.feed_types import (
    DEFAULT_EXPECTED_GRACE,
    MAX_RECORD_SIZE_LIMIT,
    RESERVED_ATTRIBUTES,
    SUPPORTED_ENCODINGS,
    Columns,
    CsvOptions,
    Expectation,
    FixedWidthOptions,
    ReceiptOptions,
    XlsxOptions,
    glob_to_regex,
    parse_duration,
    parse_size,
)
from ingest.domain.schedules import MAX_YEAR, CronError, parse_cron, previous_deadline, zone

SCHEMA = ConfigDict(extra="forbid", strict=True, frozen=True)
Text = Annotated[str, Field(min_length=1)]


class SchemaProblem(ValueError):
    """A validator's finding about another field than the one it checks."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def check_encoding(value: str) -> str:
    try:
        canonical = codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}") from None
    # codecs.lookup("latin-1").name == "iso8859-1"; normalise to the names we document
    canonical = {"iso8859-1": "latin-1"}.get(canonical, canonical)
    if canonical not in SUPPORTED_ENCODINGS:
        raise ValueError(f"encoding {value!r} is not supported ({sorted(SUPPORTED_ENCODINGS)})")
    return canonical


def check_glob(value: str) -> str:
    if not value:
        raise ValueError(
            "'match' must be a non-empty glob such as 'inbound/{partner}/orders/*.csv'"
        )
    glob_to_regex(value)  # its ValueError says what is wrong
    return value


def check_field_name(name: str) -> str:
    if name in RESERVED_ATTRIBUTES:
        raise ValueError(f"{name!r} is reserved for every record")
    return name


def check_record_size(size: int) -> int:
    if size > MAX_RECORD_SIZE_LIMIT:
        raise ValueError(f"may be at most {MAX_RECORD_SIZE_LIMIT // 1024**2}MiB")
    return size


_Encoding = Annotated[str, AfterValidator(check_encoding)]
Size = Annotated[int, PlainValidator(parse_size)]
#: seconds, or text such as ``24h`` / ``30d`` (``wait_timeout``, ``duplicate_window``)
Duration = Annotated[int, PlainValidator(parse_duration)]


class CsvSchema(BaseModel):
    model_config = SCHEMA
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    columns: list[Text] | None = None
    encoding: _Encoding = "utf-8"
    quoted_newlines: bool = False

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        value = "\t" if value == "\\t" else value
        if len(value) != 1 or value in "\r\n":
            raise ValueError("'csv.delimiter' must be one character (use '\\t' for tab)")
        return value

    @field_validator("quotechar")
    @classmethod
    def _not_the_delimiter(cls, value: str, info: ValidationInfo) -> str:
        if len(value) != 1 or value == info.data.get("delimiter"):
            raise ValueError("'csv.quotechar' must be one character, not the delimiter")
        return value

    @field_validator("columns")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value and len(set(value)) != len(value):
            raise ValueError("'csv.columns' has duplicate names")
        return value

    @model_validator(mode="after")
    def _columns_without_header(self) -> Self:
        if not self.header and not self.columns:
            message = "a CSV feed without a header row must declare 'csv.columns'"
            raise SchemaProblem(message, field="csv.columns")
        return self

    def options(self) -> CsvOptions:
        return CsvOptions(**{**self.model_dump(), "columns": tuple(self.columns or ())})


class JsonlSchema(BaseModel):
    model_config = SCHEMA
    encoding: _Encoding = "utf-8"


Column = Annotated[int, Field(ge=1)]
Width = Annotated[int, Field(ge=1, le=MAX_RECORD_SIZE_LIMIT)]


class RecordTypeSchema(BaseModel):
    model_config = SCHEMA
    start: Column
    width: Width
    value: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _value_fits(self) -> Self:
        if len(self.value.strip(" ")) > self.width:
            raise ValueError(f"'value' {self.value!r} is longer than 'width' ({self.width})")
        return self


class TrailerSchema(BaseModel):
    model_config = SCHEMA
    count_start: Column
    count_width: Annotated[int, Field(ge=1, le=38)]


class FixedWidthSchema(BaseModel):
    model_config = SCHEMA
    encoding: _Encoding = "utf-8"
    header_lines: Annotated[int, Field(ge=0)] = 0
    trailer_lines: Annotated[int, Field(ge=0)] = 0
    record_type: RecordTypeSchema | None = None
    trailer: TrailerSchema | None = None

    @model_validator(mode="after")
    def _trailer_has_lines(self) -> Self:
        if self.trailer is not None and self.trailer_lines < 1:
            message = "'fixed_width.trailer' reads the count from a trailer line: set trailer_lines"
            raise SchemaProblem(message, field="fixed_width.trailer_lines")
        return self

    def options(self) -> FixedWidthOptions:
        kind, trailer = self.record_type, self.trailer
        return FixedWidthOptions(
            encoding=self.encoding,
            header_lines=self.header_lines,
            trailer_lines=self.trailer_lines,
            record_type=Columns(kind.start, kind.width) if kind else None,
            record_value=kind.value if kind else "",
            trailer_count=Columns(trailer.count_start, trailer.count_width) if trailer else None,
        )


class XlsxSchema(BaseModel):
    model_config = SCHEMA
    sheet: Annotated[str, Field(min_length=1)] | Annotated[int, Field(ge=0)] | None = None
    header: bool = True
    header_row: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _header_row_needs_header(self) -> Self:
        if not self.header and "header_row" in self.model_fields_set:
            message = "'xlsx.header_row' is the row of column names: it needs header: true"
            raise SchemaProblem(message, field="xlsx.header_row")
        return self

    def options(self) -> XlsxOptions:
        return XlsxOptions(sheet=self.sheet, header=self.header, header_row=self.header_row)


class ReceiptSchema(BaseModel):
    """``receipt:``: the format of the feed's receipts (docs/feeds.md, "Receipts")."""

    model_config = SCHEMA
    format: Literal["json", "csv"] = "json"
    include_raw: bool = False

    def options(self) -> ReceiptOptions:
        return ReceiptOptions(format=self.format, include_raw=self.include_raw)


def check_password_secret(name: str) -> str:
    """A ``zip.password_secret``: under the prefix fanout may read, ``{partner}`` its only
    placeholder."""
    if not name.startswith(PASSWORD_SECRETS_PREFIX) or name == PASSWORD_SECRETS_PREFIX:
        raise ValueError(
            f"{name!r} is not a secret under {PASSWORD_SECRETS_PREFIX!r} (the functions may "
            f"read only those: name it e.g. '{PASSWORD_SECRETS_PREFIX}{{partner}}')"
        )
    if name.replace("{partner}", "").count("{") or name.replace("{partner}", "").count("}"):
        raise ValueError(
            f"{name!r}: the only placeholder a password secret may hold is {{partner}}"
        )
    return name


class ZipSchema(BaseModel):
    """``zip:``: the limits of the archives this feed owns, and the Secrets Manager secret of
    their password (docs/feeds.md, "Zip archives")."""

    model_config = SCHEMA
    max_expanded_bytes: Size = DEFAULT_MAX_EXPANDED_BYTES
    max_ratio: Annotated[int, Field(ge=1)] = DEFAULT_MAX_RATIO
    max_members: Annotated[int, Field(ge=1)] = DEFAULT_MAX_MEMBERS
    password_secret: Annotated[str, AfterValidator(check_password_secret)] | None = None
    password_key: Text | None = None

    @model_validator(mode="after")
    def _key_needs_secret(self) -> Self:
        if self.password_key is not None and self.password_secret is None:
            message = "'zip.password_key' is a key in the password's secret: set password_secret"
            raise SchemaProblem(message, field="zip.password_secret")
        return self

    def limits(self) -> ZipLimits:
        return ZipLimits(
            self.max_expanded_bytes,
            self.max_ratio,
            self.max_members,
            password_secret=self.password_secret,
            password_key=self.password_key,
        )


def _partners(value: object) -> tuple[str, ...] | None:
    """``"*"`` (None: every partner that has delivered to the feed) or a list of names."""
    if value == "*":
        return None
    if not isinstance(value, list) or not value:
        raise ValueError('must be "*" or a non-empty list of partner names')
    if not all(isinstance(p, str) and p and "/" not in p and p != "*" for p in value):
        raise ValueError(
            f"partner names are non-empty strings without '/' (all partners: \"*\" alone), "
            f"got {value!r}"
        )
    if len(set(value)) != len(value):
        raise ValueError(f"lists a partner twice: {value!r}")
    return tuple(value)


def _schedule(value: str) -> str:
    if not value.strip().startswith("cron("):
        raise ValueError(
            f"{value!r} is not an EventBridge cron(...) expression, such as "
            "'cron(0 9 ? * MON-FRI *)' (a rate() has no wall-clock deadlines)"
        )
    try:
        cron = parse_cron(value)
    except CronError as exc:
        raise ValueError(str(exc)) from None
    if previous_deadline(cron, datetime(MAX_YEAR, 12, 31, 23, 59, tzinfo=UTC), zone("UTC")) is None:
        raise ValueError(f"{cron.expression} never fires (no month has that day)")
    return cron.expression


def _time_zone(value: str) -> str:
    zone(value)  # its ValueError names the zone
    return value


def _grace(value: object) -> int:
    return 0 if value in (0, "0") else parse_duration(value)


class ExpectedSchema(BaseModel):
    """One entry of ``expected:`` (docs/feeds.md, "Expected files")."""

    model_config = SCHEMA
    partners: Annotated[tuple[str, ...] | None, PlainValidator(_partners)]
    schedule: Annotated[str, AfterValidator(_schedule)]
    tz: Annotated[str, AfterValidator(_time_zone)] = "UTC"
    count: Annotated[int, Field(ge=1, le=10_000)] = 1
    grace: Annotated[int, PlainValidator(_grace)] = DEFAULT_EXPECTED_GRACE

    def expectation(self) -> Expectation:
        return Expectation(
            schedule=self.schedule,
            partners=self.partners,
            tz=self.tz,
            count=self.count,
            grace_seconds=self.grace,
        )
