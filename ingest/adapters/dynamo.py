"""DynamoDB attribute values through boto3's own serializers (``boto3.dynamodb.types``).

The low-level client (which conditional writes and transactions need) speaks the wire format
``{"S": ...}`` / ``{"N": ...}``; these helpers convert with boto3's ``TypeSerializer`` and
``TypeDeserializer`` rather than by hand. Floats go in as ``Decimal`` of their ``repr`` (exact
round trip) and numbers come back as ``int`` when integral, else ``float``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def attr(value: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB's wire format (maps and lists included)."""
    return dict(_SERIALIZER.serialize(_exact(value)))


def _exact(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact(v) for v in value]
    return value


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item (or key, or expression values); ``None`` values are left out."""
    return {name: attr(value) for name, value in values.items() if value is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item from the wire format to plain Python values."""
    return {name: _plain(_DESERIALIZER.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
