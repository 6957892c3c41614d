"""Feeds: which landed files a feed owns and how to turn them into records.

A feeds file is YAML (see DESIGN.md and docs/feeds.md). It is validated completely at load;
every error names the file, the feed and the field it is about.
"""

from __future__ import annotations

import codecs
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import ConfigError

#: Attributes every record carries; feed fields may not use these names.
RESERVED_ATTRIBUTES = frozenset({"pk", "sk", "_feed", "_source", "_line"})

#: Encodings a feed may declare (codec names as Python knows them).
SUPPORTED_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "latin-1", "cp1252"})

#: A record (a line, or with csv.quoted_newlines the lines of one record) longer than this is
#: a reject; the feed's ``max_record_size`` may raise it up to MAX_RECORD_SIZE_LIMIT.
DEFAULT_MAX_RECORD_SIZE = 1024 * 1024
MAX_RECORD_SIZE_LIMIT = 64 * 1024 * 1024
#: A compressed file that inflates past either bound is FAILED at once (a decompression bomb).
DEFAULT_MAX_DECOMPRESSED_SIZE = 4 * 1024**3
DEFAULT_MAX_COMPRESSION_RATIO = 200

_SIZE_UNITS = {"": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmg]ib|b)?\s*$", re.IGNORECASE)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class FieldType(StrEnum):
    STRING = "string"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class FieldSpec:
    """One typed field of a record. ``source`` is the CSV column or JSON key it comes from."""

    name: str
    type: FieldType
    required: bool = False
    source: str = ""
    date_format: str | None = None


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    columns: tuple[str, ...] = ()
    encoding: str = "utf-8"
    #: When true a quoted field may contain newlines, so the file cannot be split into
    #: byte ranges and is always processed as one chunk.
    quoted_newlines: bool = False


@dataclass(frozen=True)
class KeyTemplate:
    """``pk``/``sk`` templates over field names and captured key parts (``{partner}``)."""

    pk: str
    sk: str

    def placeholders(self) -> set[str]:
        names: set[str] = set()
        for template in (self.pk, self.sk):
            names.update(n for _, n, _, _ in string.Formatter().parse(template) if n)
        return names


@dataclass(frozen=True)
class Feed:
    name: str
    match: str
    pattern: re.Pattern[str]
    format: Format
    key: KeyTemplate
    fields: tuple[FieldSpec, ...]
    csv: CsvOptions = field(default_factory=CsvOptions)
    encoding: str = "utf-8"
    chunk_size: int | None = None
    max_record_size: int = DEFAULT_MAX_RECORD_SIZE
    max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE
    max_compression_ratio: int = DEFAULT_MAX_COMPRESSION_RATIO

    @property
    def splittable(self) -> bool:
        """Whether an uncompressed file of this feed may be split into byte ranges."""
        return not (self.format is Format.CSV and self.csv.quoted_newlines)

    @property
    def text_encoding(self) -> str:
        return self.csv.encoding if self.format is Format.CSV else self.encoding


@dataclass(frozen=True)
class FeedMatch:
    """A key resolved to its feed, with the parts its pattern captured."""

    feed: Feed
    captures: Mapping[str, str]
    compressed: bool


@dataclass(frozen=True)
class FeedSet:
    feeds: tuple[Feed, ...]
    source: str = "<feeds>"

    def resolve(self, key: str) -> FeedMatch | None:
        """The first feed whose pattern matches ``key`` (``.gz`` stripped for matching)."""
        compressed = key.endswith(".gz")
        candidates = (key, key[:-3]) if compressed else (key,)
        for feed in self.feeds:
            for candidate in candidates:
                m = feed.pattern.fullmatch(candidate)
                if m:
                    return FeedMatch(
                        feed=feed,
                        captures=m.groupdict(),
                        compressed=compressed,
                    )
        return None

    def get(self, name: str) -> Feed:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise ConfigError(f"no feed named {name!r}", source=self.source)


def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Compile a key glob: ``{name}`` captures one path segment, ``*`` and ``?`` stay within a
    segment, ``**`` crosses segments."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "{":
            end = glob.find("}", i)
            if end == -1:
                raise ValueError(f"unclosed '{{' in {glob!r}")
            name = glob[i + 1 : end]
            if not _NAME_RE.match(name):
                raise ValueError(f"capture name {name!r} in {glob!r} is not an identifier")
            out.append(f"(?P<{name}>[^/]+)")
            i = end + 1
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


def parse_size(value: Any) -> int:
    """``1048576``, ``"64MiB"``, ``"512 KiB"`` → bytes."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        size = value
    else:
        m = _SIZE_RE.match(str(value))
        if not m:
            raise ValueError(f"not a size: {value!r} (use bytes or e.g. '64MiB')")
        size = int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()]
    if size < 1:
        raise ValueError("must be at least 1 byte")
    return size


# --- loading -------------------------------------------------------------------------------


def load_feeds(path: str | Path) -> FeedSet:
    """Load and validate a feeds file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read feeds file: {exc}", source=str(p)) from exc
    return parse_feeds(text, source=str(p))


def parse_feeds(text: str, *, source: str = "<feeds>") -> FeedSet:
    """Parse and validate feeds YAML text; ``source`` names it in errors."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=source) from exc
    if not isinstance(doc, Mapping) or not isinstance(doc.get("feeds"), list):
        raise ConfigError("expected a top-level 'feeds:' list", source=source)
    feeds: list[Feed] = []
    seen: set[str] = set()
    for index, raw in enumerate(doc["feeds"]):
        feed = _parse_feed(raw, index=index, source=source)
        if feed.name in seen:
            raise ConfigError("duplicate feed name", source=source, feed=feed.name)
        seen.add(feed.name)
        feeds.append(feed)
    return FeedSet(feeds=tuple(feeds), source=source)


def _parse_feed(raw: Any, *, index: int, source: str) -> Feed:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"feed #{index + 1} must be a mapping", source=source)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"feed #{index + 1} needs a 'name'", source=source, field="name")

    def err(message: str, fld: str) -> ConfigError:
        return ConfigError(message, source=source, feed=name, field=fld)

    allowed = {
        "name",
        "match",
        "format",
        "csv",
        "jsonl",
        "key",
        "fields",
        "chunk_size",
        "max_record_size",
        "max_decompressed_size",
        "max_compression_ratio",
    }
    unknown = set(raw) - allowed
    if unknown:
        raise err(f"unknown setting(s): {', '.join(sorted(unknown))}", sorted(unknown)[0])

    match = raw.get("match")
    if not isinstance(match, str) or not match:
        raise err(
            "'match' must be a non-empty glob such as 'inbound/{partner}/orders/*.csv'", "match"
        )
    try:
        pattern = glob_to_regex(match)
    except ValueError as exc:
        raise err(str(exc), "match") from exc
    captures = set(pattern.groupindex)

    try:
        fmt = Format(raw.get("format", ""))
    except ValueError:
        raise err(f"'format' must be one of {[f.value for f in Format]}", "format") from None

    csv_options = _parse_csv(raw.get("csv") or {}, err) if fmt is Format.CSV else CsvOptions()
    if fmt is not Format.CSV and raw.get("csv"):
        raise err("'csv' options given for a non-CSV feed", "csv")
    encoding = "utf-8"
    if fmt is Format.JSONL:
        jsonl = raw.get("jsonl") or {}
        if not isinstance(jsonl, Mapping):
            raise err("'jsonl' must be a mapping", "jsonl")
        encoding = _parse_encoding(jsonl.get("encoding", "utf-8"), err, "jsonl.encoding")

    fields = _parse_fields(raw.get("fields"), err)
    if fmt is Format.CSV and not csv_options.header and not csv_options.columns:
        raise err("a CSV feed without a header row must declare 'csv.columns'", "csv.columns")
    if fmt is Format.CSV and csv_options.columns:
        missing = [f.source for f in fields if f.source not in csv_options.columns]
        if missing:
            raise err(f"column(s) {missing} are not in csv.columns", missing[0])

    key_raw = raw.get("key")
    if not isinstance(key_raw, Mapping) or not isinstance(key_raw.get("pk"), str):
        raise err("'key' must be a mapping with a 'pk' template (and optionally 'sk')", "key")
    key = KeyTemplate(pk=key_raw["pk"], sk=str(key_raw.get("sk") or f"FEED#{name}"))
    try:
        names = key.placeholders()
    except ValueError as exc:
        raise err(f"bad key template: {exc}", "key") from exc
    for template in (key.pk, key.sk):
        # Key values are strings: a format spec or conversion would fail (or mangle) every
        # row at format time, so only plain {name} placeholders are allowed.
        for _, fname, spec, conversion in string.Formatter().parse(template):
            if fname is not None and (not fname or spec or conversion):
                raise err(f"key template {template!r}: use plain {{name}} placeholders", "key")
    known = {f.name for f in fields} | captures
    for placeholder in sorted(names):
        if placeholder not in known:
            raise err(
                f"key template refers to {{{placeholder}}}, which is neither a field nor a "
                f"capture of 'match' (known: {sorted(known)})",
                "key",
            )

    chunk_size = None
    if raw.get("chunk_size") is not None:
        try:
            chunk_size = parse_size(raw["chunk_size"])
        except ValueError as exc:
            raise err(str(exc), "chunk_size") from exc
    limits = _parse_limits(raw, err)

    return Feed(
        name=name,
        match=match,
        pattern=pattern,
        format=fmt,
        key=key,
        fields=fields,
        csv=csv_options,
        encoding=encoding,
        chunk_size=chunk_size,
        **limits,
    )


def _parse_limits(raw: Mapping[str, Any], err: Any) -> dict[str, int]:
    """The feed's input limits: record size, decompressed size, compression ratio."""
    limits: dict[str, int] = {}
    for name in ("max_record_size", "max_decompressed_size"):
        if raw.get(name) is None:
            continue
        try:
            limits[name] = parse_size(raw[name])
        except ValueError as exc:
            raise err(str(exc), name) from exc
    if limits.get("max_record_size", 0) > MAX_RECORD_SIZE_LIMIT:
        raise err(f"may be at most {MAX_RECORD_SIZE_LIMIT // 1024**2}MiB", "max_record_size")
    ratio = raw.get("max_compression_ratio")
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise err("must be a whole number of at least 1", "max_compression_ratio")
        limits["max_compression_ratio"] = ratio
    return limits


def _parse_encoding(value: Any, err: Any, fld: str) -> str:
    try:
        canonical = codecs.lookup(str(value)).name
    except LookupError:
        raise err(f"unknown encoding {value!r}", fld) from None
    # codecs.lookup("latin-1").name == "iso8859-1"; normalise to the names we document
    aliases = {"iso8859-1": "latin-1", "utf-8": "utf-8", "utf-8-sig": "utf-8-sig"}
    canonical = aliases.get(canonical, canonical)
    if canonical not in SUPPORTED_ENCODINGS:
        raise err(f"encoding {value!r} is not supported ({sorted(SUPPORTED_ENCODINGS)})", fld)
    return canonical


def _parse_csv(raw: Any, err: Any) -> CsvOptions:
    if not isinstance(raw, Mapping):
        raise err("'csv' must be a mapping", "csv")
    allowed = {"delimiter", "quotechar", "header", "columns", "encoding", "quoted_newlines"}
    unknown = set(raw) - allowed
    if unknown:
        raise err(f"unknown csv option(s): {', '.join(sorted(unknown))}", "csv")
    delimiter = raw.get("delimiter", ",")
    if delimiter == "\\t":
        delimiter = "\t"
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n":
        raise err("'csv.delimiter' must be one character (use '\\t' for tab)", "csv.delimiter")
    quotechar = raw.get("quotechar", '"')
    if not isinstance(quotechar, str) or len(quotechar) != 1 or quotechar == delimiter:
        raise err("'csv.quotechar' must be one character, not the delimiter", "csv.quotechar")
    header = raw.get("header", True)
    if not isinstance(header, bool):
        raise err("'csv.header' must be true or false", "csv.header")
    columns = raw.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
        raise err("'csv.columns' must be a list of column names", "csv.columns")
    if len(set(columns)) != len(columns):
        raise err("'csv.columns' has duplicate names", "csv.columns")
    quoted_newlines = raw.get("quoted_newlines", False)
    if not isinstance(quoted_newlines, bool):
        raise err("'csv.quoted_newlines' must be true or false", "csv.quoted_newlines")
    return CsvOptions(
        delimiter=delimiter,
        quotechar=quotechar,
        header=header,
        columns=tuple(columns),
        encoding=_parse_encoding(raw.get("encoding", "utf-8"), err, "csv.encoding"),
        quoted_newlines=quoted_newlines,
    )


def _parse_fields(raw: Any, err: Any) -> tuple[FieldSpec, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise err("'fields' must be a non-empty mapping of field name to type", "fields")
    specs: list[FieldSpec] = []
    for fname, given in raw.items():
        if not isinstance(fname, str) or not fname:
            raise err("field names must be non-empty strings", "fields")
        if fname in RESERVED_ATTRIBUTES:
            raise err(f"{fname!r} is reserved for every record", fname)
        spec = {"type": given} if isinstance(given, str) else given
        if not isinstance(spec, Mapping):
            raise err("must be a type name or a mapping with 'type'", fname)
        unknown = set(spec) - {"type", "required", "column", "key", "format"}
        if unknown:
            raise err(f"unknown option(s): {', '.join(sorted(unknown))}", fname)
        try:
            ftype = FieldType(spec.get("type", ""))
        except ValueError:
            raise err(
                f"'type' must be one of {[t.value for t in FieldType]}, got {spec.get('type')!r}",
                fname,
            ) from None
        required = spec.get("required", False)
        if not isinstance(required, bool):
            raise err("'required' must be true or false", fname)
        source = spec.get("column", spec.get("key", fname))
        if not isinstance(source, str) or not source:
            raise err("'column'/'key' must be a non-empty string", fname)
        date_format = spec.get("format")
        if date_format is not None and (
            ftype not in (FieldType.DATE, FieldType.TIMESTAMP) or not isinstance(date_format, str)
        ):
            raise err("'format' is a strptime pattern, for date and timestamp fields", fname)
        specs.append(
            FieldSpec(
                name=fname,
                type=ftype,
                required=required,
                source=source,
                date_format=date_format,
            )
        )
    return tuple(specs)
