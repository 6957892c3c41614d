"""The feeds file's schema in msgspec, for bench/cold_start.py only (msgspec is no dependency).

It checks what ``ingest.domain.feeds`` checks and builds the same ``Feed`` objects, so the
benchmark compares like with like. One difference msgspec imposes: ``msgspec.convert`` stops
at the first error, so it cannot report every problem of a file at once.

No ``from __future__ import annotations`` here: msgspec reads the annotations at runtime.
"""

import codecs
import string
from pathlib import Path
from typing import Annotated

import msgspec
import yaml

from ingest.domain import feed_types as t

Text = Annotated[str, msgspec.Meta(min_length=1)]


def _encoding(value: str) -> str:
    try:
        canonical = codecs.lookup(value).name
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}") from None
    canonical = {"iso8859-1": "latin-1"}.get(canonical, canonical)
    if canonical not in t.SUPPORTED_ENCODINGS:
        raise ValueError(f"encoding {value!r} is not supported")
    return canonical


class Csv(msgspec.Struct, forbid_unknown_fields=True):
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    columns: list[Text] | None = None
    encoding: str = "utf-8"
    quoted_newlines: bool = False

    def __post_init__(self) -> None:
        if self.delimiter == "\\t":
            self.delimiter = "\t"
        if len(self.delimiter) != 1 or self.delimiter in "\r\n":
            raise ValueError("'csv.delimiter' must be one character")
        if len(self.quotechar) != 1 or self.quotechar == self.delimiter:
            raise ValueError("'csv.quotechar' must be one character, not the delimiter")
        if self.columns and len(set(self.columns)) != len(self.columns):
            raise ValueError("'csv.columns' has duplicate names")
        if not self.header and not self.columns:
            raise ValueError("a CSV feed without a header row must declare 'csv.columns'")
        self.encoding = _encoding(self.encoding)


class Jsonl(msgspec.Struct, forbid_unknown_fields=True):
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        self.encoding = _encoding(self.encoding)


class Key(msgspec.Struct, forbid_unknown_fields=True):
    pk: str
    sk: str | None = None


class FieldDoc(msgspec.Struct, forbid_unknown_fields=True):
    type: t.FieldType
    required: bool = False
    column: Text | None = None
    key: Text | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        if self.format is not None and self.type not in (t.FieldType.DATE, t.FieldType.TIMESTAMP):
            raise ValueError("'format' is a strptime pattern, for date and timestamp fields")


class FeedDoc(msgspec.Struct, forbid_unknown_fields=True):
    name: Text
    match: Text
    format: t.Format
    fields: dict[Text, t.FieldType | FieldDoc]
    key: Key
    csv: Csv | None = None
    jsonl: Jsonl | None = None
    chunk_size: int | str | None = None
    max_record_size: int | str | None = None
    max_decompressed_size: int | str | None = None
    max_compression_ratio: Annotated[int, msgspec.Meta(ge=1)] | None = None

    def __post_init__(self) -> None:
        if not self.fields or set(self.fields) & t.RESERVED_ATTRIBUTES:
            raise ValueError("'fields' must be a non-empty mapping of non-reserved names")
        captures = set(t.glob_to_regex(self.match).groupindex)
        if self.csv is not None and self.format is not t.Format.CSV:
            raise ValueError("'csv' options given for a non-CSV feed")
        for template in (self.key.pk, self.key.sk or ""):
            for _, name, spec, conversion in string.Formatter().parse(template):
                if name is not None and (not name or spec or conversion):
                    raise ValueError(f"key template {template!r}: use plain placeholders")
                if name and name not in set(self.fields) | captures:
                    raise ValueError(f"key template refers to {{{name}}}")
        for size in (self.chunk_size, self.max_record_size, self.max_decompressed_size):
            if size is not None:
                t.parse_size(size)

    def feed(self) -> t.Feed:
        specs = []
        for name, given in self.fields.items():
            spec = FieldDoc(type=given) if isinstance(given, str) else given
            source = spec.column or spec.key or name
            specs.append(t.FieldSpec(name, spec.type, spec.required, source, spec.format))
        csv = self.csv if self.csv and self.format is t.Format.CSV else None
        return t.Feed(
            name=self.name,
            match=self.match,
            pattern=t.glob_to_regex(self.match),
            format=self.format,
            key=t.KeyTemplate(pk=self.key.pk, sk=self.key.sk or f"FEED#{self.name}"),
            fields=tuple(specs),
            csv=t.CsvOptions(**{**msgspec.structs.asdict(csv), "columns": tuple(csv.columns or ())})
            if csv
            else t.CsvOptions(),
            encoding=self.jsonl.encoding
            if self.jsonl and self.format is t.Format.JSONL
            else "utf-8",
            chunk_size=t.parse_size(self.chunk_size) if self.chunk_size is not None else None,
            max_record_size=t.parse_size(self.max_record_size or t.DEFAULT_MAX_RECORD_SIZE),
            max_decompressed_size=t.parse_size(
                self.max_decompressed_size or t.DEFAULT_MAX_DECOMPRESSED_SIZE
            ),
            max_compression_ratio=self.max_compression_ratio or t.DEFAULT_MAX_COMPRESSION_RATIO,
        )


class FeedsDoc(msgspec.Struct):
    feeds: list[FeedDoc]


def load_feeds(path: str | Path) -> t.FeedSet:
    """Load a feeds file with the msgspec schema (first error only, as msgspec reports)."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    schema = msgspec.convert(doc, FeedsDoc, strict=True)
    return t.FeedSet(feeds=tuple(feed.feed() for feed in schema.feeds), source=str(path))
