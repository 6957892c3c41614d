"""Record items in DynamoDB's wire format, as boto3's ``TypeSerializer`` writes them, faster.

``TypeSerializer.serialize`` asks a dozen questions of every value (null? bool? number? set?
binary? map? …) before it serializes it. Record items hold only strings, integers, decimals and
booleans (``ingest.domain.records``), so this serializer dispatches on the value's exact type
and falls back to ``TypeSerializer`` for anything else. Numbers go through boto3's own
``DYNAMODB_CONTEXT`` exactly as ``TypeSerializer`` sends them (so the same values are refused,
with the same exceptions). ``tests/unit/core/test_core_wire.py`` holds it to
``TypeSerializer``'s output, byte for byte; ``bench/wire.py`` measures it against it.

``batch_write_body`` writes the JSON body of a ``BatchWriteItem`` call from items already in
this format, with the same ``json.dumps`` botocore's JSON serializer ends with. botocore would
first walk every attribute of every item against the service model, copying it into a new
dict (a third of a batch's CPU once validation is off); it finds nothing to change in items
that hold no binary values. The same test holds it to botocore's body, byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeSerializer

_create_decimal = DYNAMODB_CONTEXT.create_decimal
_FALLBACK = TypeSerializer()


def _string(value: str) -> dict[str, Any]:
    return {"S": value}


def _number(value: int | Decimal) -> dict[str, Any]:
    number = str(_create_decimal(value))
    if number in ("Infinity", "NaN"):
        raise TypeError("Infinity and NaN not supported")  # as TypeSerializer says it
    return {"N": number}


def _boolean(value: bool) -> dict[str, Any]:
    return {"BOOL": value}


_BY_TYPE: dict[type, Callable[[Any], dict[str, Any]]] = {
    str: _string,
    int: _number,
    Decimal: _number,
    bool: _boolean,
}


def serialize_value(value: Any) -> dict[str, Any]:
    """One value as ``TypeSerializer().serialize(value)`` would write it."""
    fast = _BY_TYPE.get(type(value))
    if fast is None:
        return dict(_FALLBACK.serialize(value))
    return fast(value)


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item, attribute by attribute."""
    by_type = _BY_TYPE
    out: dict[str, Any] = {}
    for name, value in item.items():
        fast = by_type.get(type(value))
        out[name] = fast(value) if fast is not None else dict(_FALLBACK.serialize(value))
    return out


def batch_write_body(table: str, requests: Sequence[Mapping[str, Any]]) -> bytes:
    """The body botocore sends for ``batch_write_item(RequestItems={table: requests})``.

    ``requests`` are ``{"PutRequest": {"Item": ...}}`` / ``{"DeleteRequest": {"Key": ...}}``
    in wire format. A binary value (which botocore would base64-encode) raises ``TypeError``:
    the caller sends that batch the ordinary way.
    """
    return json.dumps({"RequestItems": {table: requests}}).encode("utf-8")
