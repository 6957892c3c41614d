"""Attribute values go through boto3's serializers, and come back as plain Python values."""

from __future__ import annotations

from ingest.adapters.dynamo import attr, from_item, to_item
from ingest.domain.files import FileStatus


def test_values_round_trip_exactly() -> None:
    values = {
        "key": "inbound/acme/orders.csv",
        "status": FileStatus.PROCESSED,
        "size": 10_485_760,
        "updated_at": 1_763_900_000.123456,
        "rows_ok": 0,
        "flag": True,
    }
    item = to_item({**values, "reason": None})
    assert "reason" not in item  # None is left out, as the ledger never stores nulls
    assert item["size"] == {"N": "10485760"}
    assert item["status"] == {"S": "PROCESSED"}
    assert item["updated_at"] == {"N": "1763900000.123456"}  # repr: no float rounding
    back = from_item(item)
    assert back == {**values, "status": "PROCESSED"}
    assert isinstance(back["size"], int)
    assert isinstance(back["updated_at"], float)


def test_attr_is_the_wire_format() -> None:
    assert attr("x") == {"S": "x"}
    assert attr(3) == {"N": "3"}
    assert attr(0.5) == {"N": "0.5"}
