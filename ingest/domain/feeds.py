"""Feeds: the feeds file, its schema, and loading it into the validated feeds.

A feeds file is YAML (see DESIGN.md and docs/feeds.md). It is validated completely at load
with pydantic, and every problem is reported at once; each names the file, the feed and the
field it is about. The feeds' types (:mod:`ingest.domain.feed_types`) are re-exported here.
"""

from __future__ import annotations

import codecs
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from ingest.domain.archives import ZipLimits
from ingest.domain.config_files import EntryKind, entry_label, validate_entries
from ingest.domain.feed_types import (
    DEFAULT_MAX_COMPRESSION_RATIO,
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    DEFAULT_MAX_RECORD_SIZE,
    MAX_RECORD_SIZE_LIMIT,
    RESERVED_ATTRIBUTES,
    SUPPORTED_ENCODINGS,
    Columns,
    CsvOptions,
    Feed,
    FeedMatch,
    FeedSet,
    FieldSpec,
    FieldType,
    FixedWidthOptions,
    Format,
    KeyTemplate,
    XlsxOptions,
    glob_to_regex,
    parse_size,
)
from ingest.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_COMPRESSION_RATIO",
    "DEFAULT_MAX_DECOMPRESSED_SIZE",
    "DEFAULT_MAX_RECORD_SIZE",
    "MAX_RECORD_SIZE_LIMIT",
    "RESERVED_ATTRIBUTES",
    "SUPPORTED_ENCODINGS",
    "CsvOptions",
    "Feed",
    "FeedMatch",
    "FeedSet",
    "FieldSpec",
    "FieldType",
    "Format",
    "KeyTemplate",
    "glob_to_regex",
    "load_feeds",
    "parse_feeds",
    "parse_size",
]

# --- the file's schema ---------------------------------------------------------------------
# pydantic checks the whole file in one pass and reports every problem; the validators below
# hold what a type cannot say. Values are taken as YAML typed them: `header: "yes"` is not true.

_SCHEMA = ConfigDict(extra="forbid", strict=True, frozen=True)
_Text = Annotated[str, Field(min_length=1)]


class _Problem(ValueError):
    """A validator's finding about another field than the one it checks."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def _encoding(value: str) -> str:
    try:
        canonical = codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}") from None
    # codecs.lookup("latin-1").name == "iso8859-1"; normalise to the names we document
    canonical = {"iso8859-1": "latin-1"}.get(canonical, canonical)
    if canonical not in SUPPORTED_ENCODINGS:
        raise ValueError(f"encoding {value!r} is not supported ({sorted(SUPPORTED_ENCODINGS)})")
    return canonical


def _glob(value: str) -> str:
    if not value:
        raise ValueError(
            "'match' must be a non-empty glob such as 'inbound/{partner}/orders/*.csv'"
        )
    glob_to_regex(value)  # its ValueError says what is wrong
    return value


def _field_name(name: str) -> str:
    if name in RESERVED_ATTRIBUTES:
        raise ValueError(f"{name!r} is reserved for every record")
    return name


def _record_size(size: int) -> int:
    if size > MAX_RECORD_SIZE_LIMIT:
        raise ValueError(f"may be at most {MAX_RECORD_SIZE_LIMIT // 1024**2}MiB")
    return size


_Encoding = Annotated[str, AfterValidator(_encoding)]
_Size = Annotated[int, PlainValidator(parse_size)]


class _CsvSchema(BaseModel):
    model_config = _SCHEMA
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    columns: list[_Text] | None = None
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
            raise _Problem(message, field="csv.columns")
        return self

    def options(self) -> CsvOptions:
        return CsvOptions(**{**self.model_dump(), "columns": tuple(self.columns or ())})


class _JsonlSchema(BaseModel):
    model_config = _SCHEMA
    encoding: _Encoding = "utf-8"


_Column = Annotated[int, Field(ge=1)]
_Width = Annotated[int, Field(ge=1, le=MAX_RECORD_SIZE_LIMIT)]


class _RecordTypeSchema(BaseModel):
    model_config = _SCHEMA
    start: _Column
    width: _Width
    value: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _value_fits(self) -> Self:
        if len(self.value.strip(" ")) > self.width:
            raise ValueError(f"'value' {self.value!r} is longer than 'width' ({self.width})")
        return self


class _TrailerSchema(BaseModel):
    model_config = _SCHEMA
    count_start: _Column
    count_width: Annotated[int, Field(ge=1, le=38)]


class _FixedWidthSchema(BaseModel):
    model_config = _SCHEMA
    encoding: _Encoding = "utf-8"
    header_lines: Annotated[int, Field(ge=0)] = 0
    trailer_lines: Annotated[int, Field(ge=0)] = 0
    record_type: _RecordTypeSchema | None = None
    trailer: _TrailerSchema | None = None

    @model_validator(mode="after")
    def _trailer_has_lines(self) -> Self:
        if self.trailer is not None and self.trailer_lines < 1:
            message = "'fixed_width.trailer' reads the count from a trailer line: set trailer_lines"
            raise _Problem(message, field="fixed_width.trailer_lines")
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


class _XlsxSchema(BaseModel):
    model_config = _SCHEMA
    sheet: Annotated[str, Field(min_length=1)] | Annotated[int, Field(ge=0)] | None = None
    header: bool = True
    header_row: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _header_row_needs_header(self) -> Self:
        if not self.header and "header_row" in self.model_fields_set:
            message = "'xlsx.header_row' is the row of column names: it needs header: true"
            raise _Problem(message, field="xlsx.header_row")
        return self

    def options(self) -> XlsxOptions:
        return XlsxOptions(sheet=self.sheet, header=self.header, header_row=self.header_row)


class _ZipSchema(BaseModel):
    """``zip:``: the limits of the archives this feed owns (docs/feeds.md, "Zip archives")."""

    model_config = _SCHEMA
    max_expanded_bytes: _Size = ZipLimits.max_expanded_bytes
    max_ratio: Annotated[int, Field(ge=1)] = ZipLimits.max_ratio
    max_members: Annotated[int, Field(ge=1)] = ZipLimits.max_members

    def limits(self) -> ZipLimits:
        return ZipLimits(self.max_expanded_bytes, self.max_ratio, self.max_members)


class _KeySchema(BaseModel):
    model_config = _SCHEMA
    pk: str
    sk: str | None = None

    @model_validator(mode="after")
    def _plain_placeholders(self) -> Self:
        for template in (self.pk, self.sk or ""):
            try:
                parsed = list(string.Formatter().parse(template))
            except ValueError as exc:
                raise ValueError(f"bad key template: {exc}") from exc
            # Key values are strings: a format spec or conversion would fail (or mangle) every
            # row at format time, so only plain {name} placeholders are allowed.
            if any(n is not None and (not n or spec or conv) for _, n, spec, conv in parsed):
                raise ValueError(f"key template {template!r}: use plain {{name}} placeholders")
        return self


class _FieldSchema(BaseModel):
    model_config = _SCHEMA
    type: Annotated[FieldType, Strict(False)]
    required: bool = False
    column: _Text | None = None
    key: _Text | None = None
    format: str | None = None
    start: _Column | None = None
    width: _Width | None = None
    scale: Annotated[int, Field(ge=0, le=38)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _type_name(cls, given: Any) -> Any:
        """``amount: decimal`` is short for ``amount: {type: decimal}``."""
        if isinstance(given, str):
            return {"type": given}
        if not isinstance(given, Mapping):
            raise ValueError(f"must be a type name or a mapping with 'type', got {given!r}")
        return given

    @model_validator(mode="after")
    def _format_for_dates(self) -> Self:
        if self.format is not None and self.type not in (FieldType.DATE, FieldType.TIMESTAMP):
            raise ValueError("'format' is a strptime pattern, for date and timestamp fields")
        if self.scale is not None and self.type is not FieldType.DECIMAL:
            raise ValueError("'scale' (implied decimals) is for decimal fields")
        if (self.start is None) != (self.width is None):
            raise ValueError("a fixed-width field needs both 'start' and 'width'")
        return self

    def spec(self, name: str) -> FieldSpec:
        source = self.column or self.key or name
        return FieldSpec(
            name,
            self.type,
            self.required,
            source,
            self.format,
            start=self.start or 0,
            width=self.width or 0,
            scale=self.scale or 0,
        )


class _FeedSchema(BaseModel):
    model_config = _SCHEMA
    name: _Text
    match: Annotated[str, AfterValidator(_glob)]
    format: Annotated[Format, Strict(False)]
    fields: dict[Annotated[_Text, AfterValidator(_field_name)], _FieldSchema]
    csv: _CsvSchema | None = None
    jsonl: _JsonlSchema | None = None
    fixed_width: _FixedWidthSchema | None = None
    xlsx: _XlsxSchema | None = None
    zip: _ZipSchema | None = None
    key: _KeySchema
    chunk_size: _Size | None = None
    max_record_size: Annotated[_Size, AfterValidator(_record_size)] | None = None
    max_decompressed_size: _Size | None = None
    max_compression_ratio: Annotated[int, Field(ge=1)] | None = None

    # The checks across fields are field validators (on the later field, with the earlier
    # ones in info.data) rather than one model validator, so that they still run, and report,
    # when an unrelated field of the feed is wrong.
    @field_validator("fields")
    @classmethod
    def _some_fields(cls, value: dict[str, _FieldSchema]) -> dict[str, _FieldSchema]:
        if not value:
            raise ValueError("'fields' must be a non-empty mapping of field name to type")
        return value

    @field_validator("csv")
    @classmethod
    def _csv_fits(cls, csv: _CsvSchema | None, info: ValidationInfo) -> _CsvSchema | None:
        fmt, fields = info.data.get("format"), info.data.get("fields")
        if csv is None:
            return csv
        if fmt is not None and fmt is not Format.CSV and csv.model_fields_set:
            raise ValueError("'csv' options given for a non-CSV feed")
        if csv.columns and fields:
            sources = {name: spec.spec(name).source for name, spec in fields.items()}
            missing = {name: col for name, col in sources.items() if col not in csv.columns}
            if missing:
                message = f"column(s) {list(missing.values())} are not in csv.columns"
                raise _Problem(message, field=next(iter(missing)))
        return csv

    @field_validator("fixed_width", "xlsx")
    @classmethod
    def _options_fit(cls, options: BaseModel | None, info: ValidationInfo) -> BaseModel | None:
        fmt = info.data.get("format")
        if options is not None and fmt is not None and fmt != info.field_name:
            raise ValueError(f"'{info.field_name}' options given for a {fmt} feed")
        return options

    @field_validator("key")
    @classmethod
    def _columns_given(cls, key: _KeySchema, info: ValidationInfo) -> _KeySchema:
        """A fixed-width feed's fields say where they are; no other feed's fields may."""
        fmt, fields = info.data.get("format"), info.data.get("fields")
        for name, spec in (fields or {}).items():
            if fmt is Format.FIXED_WIDTH and spec.start is None:
                raise _Problem("a fixed-width field needs 'start' and 'width'", field=name)
            if fmt not in (None, Format.FIXED_WIDTH) and spec.start is not None:
                raise _Problem("'start'/'width' are for fixed_width feeds", field=name)
        return key

    @field_validator("key")
    @classmethod
    def _key_names_known(cls, key: _KeySchema, info: ValidationInfo) -> _KeySchema:
        fields, match = info.data.get("fields"), info.data.get("match")
        if fields is None or match is None:
            return key  # what they are is reported already
        known = set(fields) | set(glob_to_regex(match).groupindex)
        unknown = sorted(KeyTemplate(key.pk, key.sk or "").placeholders() - known)
        if unknown:
            refs, verb = (
                ", ".join(f"{{{n}}}" for n in unknown),
                "is" if len(unknown) == 1 else "are",
            )
            raise ValueError(
                f"key template refers to {refs}, which {verb} neither a field nor a capture of "
                f"'match' (known: {sorted(known)})"
            )
        return key

    def feed(self) -> Feed:
        return Feed(
            name=self.name,
            match=self.match,
            pattern=glob_to_regex(self.match),
            format=self.format,
            key=KeyTemplate(pk=self.key.pk, sk=self.key.sk or f"FEED#{self.name}"),
            fields=tuple(spec.spec(name) for name, spec in self.fields.items()),
            csv=self.csv.options() if self.csv and self.format is Format.CSV else CsvOptions(),
            encoding=self.jsonl.encoding if self.jsonl and self.format is Format.JSONL else "utf-8",
            fixed_width=self.fixed_width.options() if self.fixed_width else FixedWidthOptions(),
            xlsx=self.xlsx.options() if self.xlsx else XlsxOptions(),
            zip=self.zip.limits() if self.zip else ZipLimits(),
            chunk_size=self.chunk_size,
            max_record_size=self.max_record_size or DEFAULT_MAX_RECORD_SIZE,
            max_decompressed_size=self.max_decompressed_size or DEFAULT_MAX_DECOMPRESSED_SIZE,
            max_compression_ratio=self.max_compression_ratio or DEFAULT_MAX_COMPRESSION_RATIO,
        )


class _FeedsSchema(BaseModel):
    # other top-level keys are ignored, as they always were
    model_config = ConfigDict(strict=True, frozen=True)
    feeds: list[_FeedSchema]


#: where an unknown key was found → the model that knows the allowed ones
_OPTIONS: dict[str, type[BaseModel]] = {
    "": _FeedSchema,
    "fields": _FieldSchema,
    "csv": _CsvSchema,
    "jsonl": _JsonlSchema,
    "fixed_width": _FixedWidthSchema,
    "xlsx": _XlsxSchema,
    "zip": _ZipSchema,
    "key": _KeySchema,
}


# --- loading -------------------------------------------------------------------------------


FEEDS = EntryKind(
    list_key="feeds",
    noun="feed",
    duplicate="duplicate feed name (feeds #{first} and #{second})",
)


def load_feeds(path: str | Path) -> FeedSet:
    """Load and validate a feeds file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read feeds file: {exc}", source=str(p)) from exc
    return parse_feeds(text, source=str(p))


def parse_feeds(text: str, *, source: str = "<feeds>") -> FeedSet:
    """Parse and validate feeds YAML text; ``source`` names it in errors.

    Every problem is reported (a :class:`ConfigError` whose ``errors`` lists them, each with
    its feed and field), not just the first.
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from exc
    schema = validate_entries(_FeedsSchema, doc, FEEDS, source, _problem)
    return FeedSet(feeds=tuple(feed.feed() for feed in schema.feeds), source=source)


def _problem(error: ErrorDetails, entries: Any, source: str) -> tuple[int, ConfigError]:
    """One of pydantic's errors as ours: which feed, which field, what is wrong."""
    loc = error["loc"]
    if len(loc) < 2 or loc[0] != "feeds":
        return -1, ConfigError("expected a top-level 'feeds:' list", source=source)
    index = int(loc[1])
    field, message = _locate(error, [str(part) for part in loc[2:]])
    feed = entry_label(entries, index)
    return index, ConfigError(message, source=source, feed=feed, field=field)


def _locate(error: ErrorDetails, path: list[str]) -> tuple[str | None, str]:
    """The field an error inside one feed is about (a field's name for the options of one
    field, ``csv.<option>``, ``key`` …) and its message."""
    if not path:
        return None, ConfigError.describe(error, "")
    head, rest = path[0], path[1:]
    if error["type"] == "extra_forbidden":
        container = head if rest else ""
        known = ", ".join(_OPTIONS[container].model_fields)
        what = {"": "setting", "fields": "option"}.get(container, f"{container} option")
        field = path[1] if container == "fields" else head
        return field, f"unknown {what} {path[-1]!r} (known: {known})"
    if head == "name":
        return "name", "needs a 'name' (a non-empty string)"
    if head == "fields" and rest:
        field, label = rest[0], ".".join(rest[1:]) or rest[0]
        label = "the field name" if label == "[key]" else repr(label)
    elif head in ("csv", "jsonl", "fixed_width", "xlsx", "zip", "key") and rest:
        field = "key" if head == "key" else f"{head}.{rest[0]}"
        label = repr(".".join(rest) if head == "key" else ".".join(path))
    else:
        field, label = head, repr(".".join(path))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _Problem):
        field = cause.field
    return field, ConfigError.describe(error, label)
