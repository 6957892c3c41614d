"""The record items' wire serializer against boto3's ``TypeSerializer``, and the batch body
against botocore's JSON serializer, byte for byte."""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.types import Binary, TypeSerializer
from botocore.serialize import create_serializer
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.adapters.wire import batch_write_body, serialize_item, serialize_value

REFERENCE = TypeSerializer()
# every kind of value a record item holds, including the edges of DynamoDB's number range
VALUES = st.one_of(
    st.text(),
    st.booleans(),
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: len(d.as_tuple().digits) <= 38 and (not d or 1e-129 < abs(d) < 1e125)
    ),
)


def _reference(value: object) -> str | None:
    try:
        return json.dumps(REFERENCE.serialize(value), sort_keys=True)
    except Exception as exc:
        return type(exc).__name__


def _ours(value: object) -> str | None:
    try:
        return json.dumps(serialize_value(value), sort_keys=True)
    except Exception as exc:
        return type(exc).__name__


@settings(max_examples=500)
@given(VALUES)
def test_every_value_serializes_exactly_as_type_serializer(value: object) -> None:
    assert _ours(value) == _reference(value)


@given(st.dictionaries(st.text(min_size=1), VALUES, max_size=12))
def test_a_whole_item_serializes_exactly_as_type_serializer(item: dict[str, object]) -> None:
    expected = {name: REFERENCE.serialize(v) for name, v in item.items()}
    assert json.dumps(serialize_item(item)) == json.dumps(expected)


@pytest.mark.parametrize(
    "value",
    [
        Decimal("0E-1000"),
        Decimal("0E+500"),
        Decimal("1E+126"),
        Decimal("1." + "1" * 40),
        10**40,
        Decimal("NaN"),
        Decimal("Infinity"),
    ],
)
def test_numbers_at_and_past_dynamodbs_edges_come_out_the_same(value: object) -> None:
    """The same wire value, or the same exception (Clamped, Rounded, TypeError …)."""
    assert _ours(value) == _reference(value)


@pytest.mark.parametrize("value", [None, b"bytes", {"a": 1}, [1, "x"], {"s", "t"}, 1.5])
def test_other_values_fall_back_to_type_serializer(value: object) -> None:
    assert _ours(value) == _reference(value)


_BATCH_WRITE = boto3.client("dynamodb", region_name="us-east-1").meta.service_model.operation_model(
    "BatchWriteItem"
)


def _botocore_body(table: str, requests: list[dict[str, object]]) -> bytes:
    serializer = create_serializer("json", include_validation=True)
    request = serializer.serialize_to_request({"RequestItems": {table: requests}}, _BATCH_WRITE)
    return bytes(request["body"])


ITEMS = st.lists(
    st.dictionaries(st.text(min_size=1), VALUES, min_size=1, max_size=12), min_size=1, max_size=25
)


@settings(max_examples=100)
@given(st.text(min_size=3, max_size=255), ITEMS)
def test_a_batch_body_is_the_one_botocore_writes(
    table: str, items: list[dict[str, object]]
) -> None:
    requests = [{"PutRequest": {"Item": serialize_item(item)}} for item in items]
    assert batch_write_body(table, requests) == _botocore_body(table, requests)


def test_deletes_and_nested_values_are_written_as_botocore_writes_them() -> None:
    item = serialize_item({"pk": "a", "list": [1, "x", None], "map": {"k": True}, "set": {"s"}})
    requests = [{"PutRequest": {"Item": item}}, {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]
    assert batch_write_body("records", requests) == _botocore_body("records", requests)


def test_a_binary_value_is_refused_so_the_batch_goes_the_ordinary_way() -> None:
    requests = [{"PutRequest": {"Item": {"pk": {"S": "a"}, "blob": {"B": Binary(b"x")}}}}]
    with pytest.raises(TypeError):
        batch_write_body("records", requests)
