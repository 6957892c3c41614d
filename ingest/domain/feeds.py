"""Feeds: the feeds file, its schema, and loading it into the validated feeds.

A feeds file is YAML (see DESIGN.md and docs/feeds.md). It is validated completely at load
with pydantic, and every problem is reported at once; each names the file, the feed and the
field it is about. The feeds' types (:mod:`ingest.domain.feed_types`) are re-exported here.
"""

from __future__ import annotations

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
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from ingest.domain.archives import ZipLimits
from ingest.domain.config_files import EntryKind, entry_label, validate_entries
from ingest.domain.feed_formats import (
    SCHEMA,
    Column,
    CsvSchema,
    Duration,
    ExpectedSchema,
    FixedWidthSchema,
    JsonlSchema,
    ReceiptSchema,
    SchemaProblem,
    Size,
    Text,
    Width,
    XlsxSchema,
    ZipSchema,
    check_field_name,
    check_glob,
    check_record_size,
)
from ingest.domain.feed_types import (
    DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_MAX_COMPRESSION_RATIO,
    DEFAULT_MAX_DECOMPRESSED_SIZE,
    DEFAULT_MAX_RECORD_SIZE,
    DEFAULT_WAIT_TIMEOUT,
    MAX_RECORD_SIZE_LIMIT,
    RESERVED_ATTRIBUTES,
    SUPPORTED_ENCODINGS,
    CsvOptions,
    Duplicates,
    Feed,
    FeedMatch,
    FeedSet,
    FieldSpec,
    FieldType,
    FixedWidthOptions,
    Format,
    KeyTemplate,
    ReceiptOptions,
    WaitFor,
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


class _KeySchema(BaseModel):
    model_config = SCHEMA
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
    model_config = SCHEMA
    type: Annotated[FieldType, Strict(False)]
    required: bool = False
    column: Text | None = None
    key: Text | None = None
    format: str | None = None
    start: Column | None = None
    width: Width | None = None
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
    model_config = SCHEMA
    name: Text
    match: Annotated[str, AfterValidator(check_glob)]
    format: Annotated[Format, Strict(False)]
    fields: dict[Annotated[Text, AfterValidator(check_field_name)], _FieldSchema]
    csv: CsvSchema | None = None
    jsonl: JsonlSchema | None = None
    fixed_width: FixedWidthSchema | None = None
    xlsx: XlsxSchema | None = None
    zip: ZipSchema | None = None
    receipt: ReceiptSchema | None = None
    key: _KeySchema
    chunk_size: Size | None = None
    max_record_size: Annotated[Size, AfterValidator(check_record_size)] | None = None
    max_decompressed_size: Size | None = None
    max_compression_ratio: Annotated[int, Field(ge=1)] | None = None
    wait_for: Annotated[WaitFor, Strict(False)] = WaitFor.NONE
    wait_timeout: Duration | None = None
    duplicates: Annotated[Duplicates, Strict(False)] = Duplicates.ALLOW
    duplicate_window: Duration | None = None
    expected: list[ExpectedSchema] | None = None

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
    def _csv_fits(cls, csv: CsvSchema | None, info: ValidationInfo) -> CsvSchema | None:
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
                raise SchemaProblem(message, field=next(iter(missing)))
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
                raise SchemaProblem("a fixed-width field needs 'start' and 'width'", field=name)
            if fmt not in (None, Format.FIXED_WIDTH) and spec.start is not None:
                raise SchemaProblem("'start'/'width' are for fixed_width feeds", field=name)
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
            receipt=self.receipt.options() if self.receipt else ReceiptOptions(),
            chunk_size=self.chunk_size,
            max_record_size=self.max_record_size or DEFAULT_MAX_RECORD_SIZE,
            max_decompressed_size=self.max_decompressed_size or DEFAULT_MAX_DECOMPRESSED_SIZE,
            max_compression_ratio=self.max_compression_ratio or DEFAULT_MAX_COMPRESSION_RATIO,
            wait_for=self.wait_for,
            wait_timeout=self.wait_timeout or DEFAULT_WAIT_TIMEOUT,
            duplicates=self.duplicates,
            duplicate_window=self.duplicate_window or DEFAULT_DUPLICATE_WINDOW,
            expected=tuple(e.expectation() for e in self.expected or ()),
        )


class _FeedsSchema(BaseModel):
    # other top-level keys are ignored, as they always were
    model_config = ConfigDict(strict=True, frozen=True)
    feeds: list[_FeedSchema]


#: where an unknown key was found → the model that knows the allowed ones
_OPTIONS: dict[str, type[BaseModel]] = {
    "": _FeedSchema,
    "fields": _FieldSchema,
    "csv": CsvSchema,
    "jsonl": JsonlSchema,
    "fixed_width": FixedWidthSchema,
    "xlsx": XlsxSchema,
    "zip": ZipSchema,
    "receipt": ReceiptSchema,
    "expected": ExpectedSchema,
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
    elif head == "expected" and len(rest) > 1:
        field, label = f"expected[{rest[0]}].{rest[1]}", repr(rest[1])
    elif head in ("csv", "jsonl", "fixed_width", "xlsx", "zip", "receipt", "key") and rest:
        field = "key" if head == "key" else f"{head}.{rest[0]}"
        label = repr(".".join(rest) if head == "key" else ".".join(path))
    else:
        field, label = head, repr(".".join(path))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SchemaProblem):
        field = cause.field
    return field, ConfigError.describe(error, label)
