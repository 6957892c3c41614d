"""Compiled feeds: what `ingest feeds push` publishes decodes into the very feeds it validated.

The functions read only the compiled document (no pydantic, no PyYAML at cold start), so the
round trip must carry every option of every feed type. ``fixtures/feeds-every-option.yaml``
sets each field of the feed types to something other than its default in some feed, and a test
checks that it does: a new option is covered as soon as it is added there.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ingest.domain.feed_codec import (
    COMPILED_VERSION,
    compiled_location,
    decode_feeds,
    encode_feeds,
)
from ingest.domain.feed_types import Feed, FeedSet
from ingest.domain.feeds import load_feeds
from ingest.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
FEEDS_FILES = ["fixtures/feeds.yaml", "fixtures/feeds-every-option.yaml"]
EVERY_OPTION = ROOT / "fixtures/feeds-every-option.yaml"


@pytest.mark.parametrize("name", FEEDS_FILES)
def test_compiled_feeds_decode_into_the_validated_feeds(name: str) -> None:
    feeds = load_feeds(ROOT / name)
    decoded = decode_feeds(encode_feeds(feeds), source="s3://landing/config/feeds.json")
    assert decoded == feeds
    assert decoded.resolve("inbound/acme/orders/2026-12-01.csv") == feeds.resolve(
        "inbound/acme/orders/2026-12-01.csv"
    )


def _struct_types(root: type[Any]) -> list[type[Any]]:
    """Every Struct reachable from ``root`` through its fields' type hints."""
    seen: list[type[Any]] = []
    todo = [root]
    while todo:
        kind = todo.pop()
        if kind in seen:
            continue
        seen.append(kind)
        for hint in typing.get_type_hints(kind).values():
            for arg in (hint, *typing.get_args(hint)):
                if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                    todo.append(arg)
    return seen


def _instances(value: Any) -> list[Any]:
    if isinstance(value, msgspec.Struct):
        found = [value]
        for spec in msgspec.structs.fields(value):
            found += _instances(getattr(value, spec.name))
        return found
    if isinstance(value, tuple | list):
        return [i for item in value for i in _instances(item)]
    return []


def _default(spec: msgspec.structs.FieldInfo) -> Any:
    if spec.default is not msgspec.NODEFAULT:
        return spec.default
    if spec.default_factory is not msgspec.NODEFAULT:
        return spec.default_factory()
    return msgspec.NODEFAULT


def test_the_every_option_fixture_sets_every_field_of_the_feed_types() -> None:
    feeds = load_feeds(EVERY_OPTION)
    instances = _instances(feeds.feeds)
    unset = []
    for kind in _struct_types(Feed):
        mine = [i for i in instances if type(i) is kind]
        for spec in msgspec.structs.fields(kind):
            default = _default(spec)
            if default is msgspec.NODEFAULT:
                assert mine, f"no {kind.__name__} in {EVERY_OPTION.name}"
                continue
            if all(getattr(i, spec.name) == default for i in mine):
                unset.append(f"{kind.__name__}.{spec.name}")
    assert not unset, f"{EVERY_OPTION.name} leaves these at their defaults: add them: {unset}"


def test_the_document_names_its_version_and_its_source() -> None:
    feeds = msgspec.structs.replace(
        load_feeds(ROOT / FEEDS_FILES[0]), source="s3://b/config/f.yaml"
    )
    document = json.loads(encode_feeds(feeds))
    assert document["compiled_feeds"] == COMPILED_VERSION
    assert document["source"] == "s3://b/config/f.yaml"
    assert [f["name"] for f in document["feeds"]] == [f.name for f in feeds.feeds]
    assert decode_feeds(json.dumps(document), source="x").source == "s3://b/config/f.yaml"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("feeds: []", "not a compiled feeds document"),
        ('{"feeds": []}', "not a compiled feeds document"),
        ('{"compiled_feeds": 99, "feeds": []}', "publish the feeds file again"),
        ('{"compiled_feeds": 1, "feeds": [{"name": "x"}]}', "malformed compiled feeds"),
    ],
)
def test_a_document_that_is_not_compiled_feeds_is_a_clear_error(
    document: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        decode_feeds(document, source="s3://landing/config/feeds.json")
    assert message in str(info.value)
    assert "s3://landing/config/feeds.json" in str(info.value)


@pytest.mark.parametrize(
    ("pattern", "message"), [("inbound/(unclosed", "bad pattern"), (7, "expected a pattern string")]
)
def test_a_bad_pattern_is_refused(pattern: object, message: str) -> None:
    document = json.loads(encode_feeds(load_feeds(ROOT / FEEDS_FILES[0])))
    document["feeds"][0]["pattern"] = pattern
    with pytest.raises(ConfigError, match=message):
        decode_feeds(json.dumps(document), source="x")


@pytest.mark.parametrize(
    ("location", "compiled"),
    [
        ("s3://landing/config/feeds.yaml", "s3://landing/config/feeds.json"),
        ("config/feeds.yml", "config/feeds.json"),
        ("/tmp/feeds.json", "/tmp/feeds.json"),
        ("s3://landing/config/feeds", "s3://landing/config/feeds.json"),
    ],
)
def test_the_compiled_document_sits_next_to_the_feeds_file(location: str, compiled: str) -> None:
    assert compiled_location(location) == compiled


def test_an_empty_feed_set_round_trips() -> None:
    assert decode_feeds(encode_feeds(FeedSet(())), source="x") == FeedSet(())
