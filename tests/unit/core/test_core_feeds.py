"""Feeds: validation errors name the file, the feed and the field; key globs and sizes."""

from __future__ import annotations

import textwrap

import pytest

from ingest.domain.feeds import (
    FieldType,
    Format,
    glob_to_regex,
    load_feeds,
    parse_feeds,
    parse_size,
)
from ingest.errors import ConfigError

GOOD = """
feeds:
  - name: orders
    match: "inbound/{partner}/orders/*.csv"
    format: csv
    csv: {delimiter: ",", header: true, encoding: utf-8}
    key: {pk: "ORDER#{order_id}", sk: "PARTNER#{partner}"}
    chunk_size: 1MiB
    fields:
      order_id: {type: string, required: true}
      amount:   {type: decimal, required: true}
      quantity: {type: int}
      placed_at: {type: timestamp}
      total: {type: decimal, column: "Order Total"}
"""


def one(body: str) -> str:
    """A feeds document with one feed whose lines are ``body`` (a YAML mapping)."""
    lines = textwrap.dedent(body).strip().splitlines()
    return "feeds:\n  - " + "\n    ".join(lines) + "\n"


BASE = """
name: orders
match: "inbound/{partner}/orders/*.csv"
format: csv
key: {pk: "ORDER#{order_id}"}
fields:
  order_id: {type: string, required: true}
"""


def test_a_valid_feed_loads_with_its_options():
    feeds = parse_feeds(GOOD, source="feeds.yaml")
    feed = feeds.get("orders")
    assert feed.format is Format.CSV
    assert feed.chunk_size == 1024 * 1024
    assert [(f.name, f.type, f.required, f.source) for f in feed.fields] == [
        ("order_id", FieldType.STRING, True, "order_id"),
        ("amount", FieldType.DECIMAL, True, "amount"),
        ("quantity", FieldType.INT, False, "quantity"),
        ("placed_at", FieldType.TIMESTAMP, False, "placed_at"),
        ("total", FieldType.DECIMAL, False, "Order Total"),
    ]
    assert feed.key.sk == "PARTNER#{partner}"
    # sk defaults to the feed's name
    assert parse_feeds(one(BASE)).get("orders").key.sk == "FEED#orders"


def test_load_feeds_names_the_file(tmp_path):
    path = tmp_path / "feeds.yaml"
    path.write_text(GOOD)
    assert load_feeds(path).source == str(path)
    with pytest.raises(ConfigError, match=r"^file .*missing\.yaml: cannot read feeds file"):
        load_feeds(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (BASE.replace("format: csv", "format: xml"), "format", "'format' must be one of"),
        (BASE.replace('match: "inbound/{partner}/orders/*.csv"', "match: ''"), "match", "glob"),
        (BASE.replace("{partner}", "{par-tner}"), "match", "not an identifier"),
        (BASE.replace("{partner}", "{partner"), "match", "unclosed"),
        (BASE + "colour: red\n", "colour", "unknown setting"),
        (BASE.replace("{type: string, required: true}", "{type: text}"), "order_id", "'type'"),
        (BASE.replace("required: true", "required: maybe"), "order_id", "'required'"),
        (BASE.replace("required: true", "requird: true"), "order_id", "unknown option"),
        (BASE + "  _line: int\n", "_line", "reserved"),
        (BASE + "  pk: string\n", "pk", "reserved"),
        (BASE.replace("ORDER#{order_id}", "ORDER#{nope}"), "key", "{nope}"),
        (BASE.replace('key: {pk: "ORDER#{order_id}"}', "key: {sk: x}"), "key", "'pk'"),
        (BASE + "chunk_size: 12 furlongs\n", "chunk_size", "not a size"),
        (BASE + "chunk_size: 0\n", "chunk_size", "at least 1 byte"),
        (BASE + "max_record_size: 65MiB\n", "max_record_size", "at most 64MiB"),
        (BASE + "max_record_size: lots\n", "max_record_size", "not a size"),
        (BASE + "max_decompressed_size: 0\n", "max_decompressed_size", "at least 1 byte"),
        (BASE + "max_compression_ratio: 0\n", "max_compression_ratio", "at least 1"),
        (BASE + "max_compression_ratio: 2.5\n", "max_compression_ratio", "whole number"),
        (BASE + "csv: {delimiter: ';;'}\n", "csv.delimiter", "one character"),
        (BASE + "csv: {quotechar: ','}\n", "csv.quotechar", "not the delimiter"),
        (BASE + "csv: {header: 'yes'}\n", "csv.header", "true or false"),
        (BASE + "csv: {encoding: ebcdic-xx}\n", "csv.encoding", "unknown encoding"),
        (BASE + "csv: {encoding: utf-16}\n", "csv.encoding", "not supported"),
        (BASE + "csv: {header: false}\n", "csv.columns", "must declare 'csv.columns'"),
        (BASE + "csv: {columns: [a, b]}\n", "order_id", "not in csv.columns"),
        (BASE + "csv: {columns: [order_id, order_id]}\n", "csv.columns", "duplicate"),
        (BASE + "csv: {quoted_newlines: 1}\n", "csv.quoted_newlines", "true or false"),
        (BASE + "csv: {escape: x}\n", "csv", "unknown csv option"),
        (BASE.replace("format: csv", "format: jsonl") + "csv: {header: true}\n", "csv", "non-CSV"),
        (BASE.replace("format: csv", "format: jsonl") + "jsonl: [1]\n", "jsonl", "mapping"),
        (
            BASE.replace("format: csv", "format: jsonl") + "jsonl: {encoding: nope}\n",
            "jsonl.encoding",
            "unknown encoding",
        ),
        (BASE + "  day: {type: int, format: '%d'}\n", "day", "strptime"),
        (
            BASE.replace("{type: string, required: true}", "{type: string, column: ''}"),
            "order_id",
            "non-empty",
        ),
    ],
)
def test_validation_errors_name_file_feed_and_field(body, field, message):
    with pytest.raises(ConfigError) as info:
        parse_feeds(one(body), source="conf/feeds.yaml")
    err = info.value
    assert (err.source, err.feed, err.field) == ("conf/feeds.yaml", "orders", field)
    text = str(err)
    assert text.startswith(f"file conf/feeds.yaml, feed 'orders', field '{field}': ")
    assert message in text


def test_document_level_errors_name_the_file():
    for text, message in [
        ("feeds: {}", "top-level 'feeds:' list"),
        ("[1, 2]", "top-level 'feeds:' list"),
        ("feeds: [", "not valid YAML"),
        ("feeds:\n  - 3\n", "feed '#1': must be a mapping, got 3"),
        ("feeds:\n  - match: x\n", "feed '#1', field 'name': needs a 'name'"),
    ]:
        with pytest.raises(ConfigError, match=message) as info:
            parse_feeds(text, source="f.yaml")
        assert info.value.source == "f.yaml"


def test_duplicate_feed_names_are_refused():
    with pytest.raises(ConfigError, match="duplicate feed name") as info:
        parse_feeds(one(BASE) + "  - " + "\n    ".join(BASE.strip().splitlines()) + "\n")
    assert (info.value.feed, info.value.field) == ("orders", "name")
    assert "feeds #1 and #2" in str(info.value)


MISTAKES = """
feeds:
  - name: orders
    match: "inbound/{partner}/orders/*.csv"
    format: xml
    key: {pk: "ORDER#{order}"}
    chunk_size: 12 furlongs
    colour: red
    fields: {order_id: string}
  - name: events
    match: "inbound/{partner}/events/*.jsonl"
    format: jsonl
    key: {pk: "EVENT#{event_id}"}
    csv: {header: true}
    fields:
      event_id: {type: string, requird: true}
      amount: {type: money}
  - match: "inbound/{partner}/x/*.csv"
    format: csv
    key: {pk: "X#{id}"}
    fields: {id: string}
  - name: orders
    match: "inbound/{partner}/more/*.csv"
    format: csv
    key: {pk: "O#{id}"}
    fields: {id: string}
"""


def test_a_file_with_several_mistakes_reports_every_one():
    with pytest.raises(ConfigError) as info:
        parse_feeds(MISTAKES, source="conf/feeds.yaml")
    err = info.value
    found = [(e.source, e.feed, e.field) for e in err.errors]
    assert found == [
        ("conf/feeds.yaml", "orders", "format"),
        ("conf/feeds.yaml", "orders", "key"),
        ("conf/feeds.yaml", "orders", "chunk_size"),
        ("conf/feeds.yaml", "orders", "colour"),
        ("conf/feeds.yaml", "events", "event_id"),
        ("conf/feeds.yaml", "events", "amount"),
        ("conf/feeds.yaml", "events", "csv"),
        ("conf/feeds.yaml", "#3", "name"),
        ("conf/feeds.yaml", "orders", "name"),
    ]
    lines = str(err).splitlines()
    assert lines[0] == "file conf/feeds.yaml: 9 problems:"
    assert len(lines) == 1 + len(err.errors)
    for line, problem in zip(lines[1:], err.errors, strict=True):
        assert line == f"  feed {problem.feed!r}, field {problem.field!r}: {problem.message}"
    for needle in [
        "'format' must be one of 'csv', 'jsonl', 'fixed_width' or 'xlsx', got 'xml'",
        "key template refers to {order}",
        "not a size: '12 furlongs'",
        "unknown setting 'colour'",
        "unknown option 'requird'",
        "'type' must be one of",
        "'csv' options given for a non-CSV feed",
        "needs a 'name'",
        "duplicate feed name (feeds #1 and #4)",
    ]:
        assert needle in str(err), needle


def test_checks_across_fields_still_run_when_another_field_is_wrong():
    # the key template is checked against the fields even though chunk_size is wrong, and
    # the columns against the fields even though the feed has an unknown setting
    body = BASE.replace("ORDER#{order_id}", "ORDER#{nope}") + "chunk_size: lots\n"
    body += "csv: {header: false, columns: [a]}\ncolour: red\n"
    with pytest.raises(ConfigError) as info:
        parse_feeds(one(body), source="f.yaml")
    fields = sorted(e.field for e in info.value.errors)
    assert fields == ["chunk_size", "colour", "key", "order_id"]
    assert all(e.feed == "orders" and e.source == "f.yaml" for e in info.value.errors)


def test_one_mistake_is_the_error_itself():
    with pytest.raises(ConfigError) as info:
        parse_feeds(one(BASE.replace("format: csv", "format: xml")), source="f.yaml")
    assert info.value.errors == [info.value]
    assert "\n" not in str(info.value)


def test_fields_must_be_a_non_empty_mapping():
    with pytest.raises(ConfigError, match="'fields' must be") as info:
        parse_feeds(one(BASE.split("fields:", maxsplit=1)[0] + "fields: {}"))
    assert info.value.field == "fields"


def test_encodings_are_normalised():
    doc = one(BASE + "csv: {encoding: ISO-8859-1}\n")
    assert parse_feeds(doc).get("orders").csv.encoding == "latin-1"
    doc = one(BASE + "csv: {encoding: UTF8}\n")
    assert parse_feeds(doc).get("orders").csv.encoding == "utf-8"
    doc = one(BASE + "csv: {delimiter: '\\t'}\n")
    assert parse_feeds(doc).get("orders").csv.delimiter == "\t"


def test_glob_captures_and_wildcards():
    pattern = glob_to_regex("inbound/{partner}/orders/*.csv")
    m = pattern.fullmatch("inbound/acme/orders/2026-01-01.csv")
    assert m is not None and m.groupdict() == {"partner": "acme"}
    assert pattern.fullmatch("inbound/acme/orders/sub/x.csv") is None  # * stays in a segment
    assert pattern.fullmatch("inbound/a/b/orders/x.csv") is None  # {name} is one segment
    assert pattern.fullmatch("inbound/acme/orders/x.csvx") is None
    deep = glob_to_regex("inbound/**/x?.jsonl")
    assert deep.fullmatch("inbound/a/b/c/x1.jsonl")
    assert not deep.fullmatch("inbound/a/x12.jsonl")
    literal = glob_to_regex("in/a+b (1).csv")  # regex metacharacters are literal
    assert literal.fullmatch("in/a+b (1).csv")
    assert not literal.fullmatch("in/aab 1.csv")


def test_resolve_strips_gz_and_returns_captures():
    feeds = parse_feeds(GOOD)
    match = feeds.resolve("inbound/acme/orders/a.csv.gz")
    assert match is not None
    assert (match.feed.name, dict(match.captures), match.compressed) == (
        "orders",
        {"partner": "acme"},
        True,
    )
    plain = feeds.resolve("inbound/acme/orders/a.csv")
    assert plain is not None and not plain.compressed
    assert feeds.resolve("inbound/acme/other/a.csv") is None
    with pytest.raises(ConfigError, match="no feed named 'nope'"):
        feeds.get("nope")


def test_splittable_depends_on_quoted_newlines():
    assert parse_feeds(one(BASE)).get("orders").splittable
    doc = one(BASE + "csv: {quoted_newlines: true}\n")
    assert not parse_feeds(doc).get("orders").splittable


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1048576, 1048576),
        ("64MiB", 64 * 1024**2),
        ("512 KiB", 512 * 1024),
        ("1gib", 1024**3),
        ("10b", 10),
        ("7", 7),
    ],
)
def test_parse_size(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize("value", [True, "1MB", "-1", 0, "1.5MiB", ""])
def test_parse_size_refuses_bad_sizes(value):
    with pytest.raises(ValueError):
        parse_size(value)


@pytest.mark.parametrize(
    "template", ["ORDER#{order_id:.2f}", "ORDER#{order_id!r}", "ORDER#{}", "ORDER#{order_id:>5}"]
)
def test_key_templates_take_plain_placeholders_only(template):
    # a format spec, conversion or positional field used to pass validation and then fail
    # every row at format time, failing whole chunks instead of naming the setting at load
    body = BASE.replace('"ORDER#{order_id}"', f'"{template}"')
    with pytest.raises(ConfigError, match="plain") as info:
        parse_feeds(one(body), source="f.yaml")
    assert (info.value.feed, info.value.field) == ("orders", "key")


def test_input_limits_have_defaults_and_can_be_set_per_feed():
    default = parse_feeds(one(BASE)).feeds[0]
    assert (
        default.max_record_size,
        default.max_decompressed_size,
        default.max_compression_ratio,
    ) == (1024**2, 4 * 1024**3, 200)
    body = BASE + "max_record_size: 4MiB\nmax_decompressed_size: 1GiB\nmax_compression_ratio: 50\n"
    feed = parse_feeds(one(body)).feeds[0]
    assert (feed.max_record_size, feed.max_decompressed_size, feed.max_compression_ratio) == (
        4 * 1024**2,
        1024**3,
        50,
    )
