"""Typed fields and key templates: what a record becomes in DynamoDB, or why it is rejected."""

from __future__ import annotations

from decimal import Decimal

import pytest
from coreparse import feed_of

from ingest.domain.records import build_item, typed_fields
from ingest.errors import RowError

FEED = feed_of(
    """
feeds:
  - name: orders
    match: "inbound/{partner}/orders/{day}/*.csv"
    format: csv
    key: {pk: "ORDER#{order_id}", sk: "PARTNER#{partner}#DAY#{day}#{paid}"}
    fields:
      order_id: {type: string, required: true}
      amount: {type: decimal, required: true}
      quantity: int
      paid: {type: bool, required: true}
      ship_date: date
      placed_at: timestamp
      legacy_date: {type: date, format: "%d/%m/%Y"}
      legacy_ts: {type: timestamp, format: "%d/%m/%Y %H:%M"}
      note: {type: string, column: "Free Text"}
"""
)

ROW = {"order_id": "A-1", "amount": "12.50", "paid": "yes"}


def fields(**overrides):
    return typed_fields(FEED, {**ROW, **overrides})


def reason(**overrides):
    with pytest.raises(RowError) as info:
        fields(**overrides)
    return info.value.reason


def test_decimal_is_a_decimal_never_a_float():
    value = fields(amount="12.50")["amount"]
    assert isinstance(value, Decimal)
    assert str(value) == "12.50"
    assert fields(amount=" -0.000001 ")["amount"] == Decimal("-0.000001")
    assert fields(amount="1e3")["amount"] == Decimal("1E+3")
    # JSON numbers arrive as Decimal (parse_float=Decimal) or int and stay exact
    assert fields(amount=Decimal("0.1"))["amount"] == Decimal("0.1")
    assert fields(amount=7)["amount"] == Decimal(7)


@pytest.mark.parametrize("bad", ["NaN", "nan", "Infinity", "-inf", "sNaN", float("nan")])
def test_nan_and_infinity_are_refused(bad):
    assert "not a finite decimal" in reason(amount=bad)


@pytest.mark.parametrize("bad", ["abc", "1,5", "", True])
def test_non_decimals_are_refused(bad):
    message = reason(amount=bad)
    assert "'amount'" in message
    assert ("required but empty" if bad == "" else "not a decimal") in message


def test_more_digits_than_dynamodb_holds_are_refused():
    assert "38 significant digits" in reason(amount="1" * 39)
    assert fields(amount="9" * 38)["amount"] == Decimal("9" * 38)


def test_int_forms():
    assert fields(quantity=" 42 ")["quantity"] == 42
    assert fields(quantity=-3)["quantity"] == -3
    for bad in ("4.0", "four", Decimal("1.5"), True, 2.0):
        assert "not an integer" in reason(quantity=bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("T", True),
        ("Yes", True),
        ("y", True),
        ("1", True),
        (True, True),
        ("false", False),
        ("F", False),
        ("NO", False),
        ("n", False),
        ("0", False),
        (False, False),
    ],
)
def test_bool_forms(text, value):
    assert fields(paid=text)["paid"] is value


def test_bool_refuses_other_words():
    assert "not a boolean" in reason(paid="maybe")
    assert "not a boolean" in reason(paid="2")


def test_date_and_timestamp_are_iso_strings():
    out = fields(
        ship_date="2026-02-03",
        placed_at="2026-02-03T10:20:30Z",
        legacy_date="03/02/2026",
        legacy_ts="03/02/2026 10:20",
    )
    assert out["ship_date"] == "2026-02-03"
    assert out["placed_at"] == "2026-02-03T10:20:30+00:00"
    assert out["legacy_date"] == "2026-02-03"
    assert out["legacy_ts"] == "2026-02-03T10:20:00"
    assert fields(placed_at="2026-02-03 10:20:30.5+01:00")["placed_at"] == (
        "2026-02-03T10:20:30.500000+01:00"
    )


@pytest.mark.parametrize(
    ("field", "bad", "expected"),
    [
        ("ship_date", "2026-02-30", "not a date (YYYY-MM-DD)"),
        ("ship_date", "03/02/2026", "not a date (YYYY-MM-DD)"),
        ("placed_at", "yesterday", "not a timestamp (ISO 8601)"),
        ("legacy_date", "2026-02-03", "not a date (%d/%m/%Y)"),
        ("legacy_ts", "03/02/2026", "not a timestamp (%d/%m/%Y %H:%M)"),
    ],
)
def test_bad_dates_name_the_expected_format(field, bad, expected):
    message = reason(**{field: bad})
    assert f"field {field!r}" in message
    assert expected in message


def test_required_and_optional():
    assert reason(order_id="  ") == "field 'order_id': required but empty"
    with pytest.raises(RowError, match="'amount': required but empty"):
        typed_fields(FEED, {"order_id": "x", "paid": "1"})
    out = fields(quantity="", ship_date=None)
    # empty optional values are left out of the item, not stored as empty strings
    assert "quantity" not in out and "ship_date" not in out


def test_string_field_from_a_renamed_column_keeps_whitespace():
    assert fields(**{"Free Text": "  hello, world "})["note"] == "  hello, world "
    with pytest.raises(RowError, match="expected a string, got a JSON dict"):
        typed_fields(FEED, {**ROW, "Free Text": {"a": 1}})


def test_build_item_fills_key_templates_from_fields_and_captures():
    item = build_item(
        FEED,
        {**ROW, "quantity": "3"},
        captures={"partner": "acme", "day": "2026-01-01"},
        source_uri="s3://b/inbound/acme/orders/2026-01-01/f.csv",
        line=17,
    )
    assert item == {
        "order_id": "A-1",
        "amount": Decimal("12.50"),
        "paid": True,
        "quantity": 3,
        "pk": "ORDER#A-1",
        "sk": "PARTNER#acme#DAY#2026-01-01#true",
        "_feed": "orders",
        "_source": "s3://b/inbound/acme/orders/2026-01-01/f.csv",
        "_line": 17,
    }


def test_key_template_over_an_empty_optional_field_is_a_reject():
    feed = feed_of(
        """
feeds:
  - name: f
    match: "in/*.csv"
    format: csv
    key: {pk: "X#{a}", sk: "Y#{b}"}
    fields: {a: {type: string, required: true}, b: string}
"""
    )
    with pytest.raises(RowError, match="key field 'b' is empty"):
        build_item(feed, {"a": "1", "b": ""}, captures={}, source_uri="s3://b/k", line=2)
    item = build_item(feed, {"a": "1", "b": "2"}, captures={}, source_uri="s3://b/k", line=2)
    assert (item["pk"], item["sk"]) == ("X#1", "Y#2")


@pytest.mark.parametrize("bad", ["1e200", "-1E+126", "1e-131", "-5E-200"])
def test_decimals_outside_dynamodb_number_range_are_rejected_per_row(bad):
    # DynamoDB holds magnitudes from 1E-130 to 9.99...E+125; anything else would make the
    # whole BatchWriteItem (and so the whole chunk) fail instead of rejecting this one row
    assert "outside DynamoDB's number range" in reason(amount=bad)


@pytest.mark.parametrize(
    "good", ["9.9999999999999999999999999999999999999E+125", "1E-130", "0E-200"]
)
def test_decimals_at_the_edges_of_dynamodb_number_range_are_kept(good):
    assert fields(amount=good)["amount"] == Decimal(good)


def test_ints_with_more_digits_than_dynamodb_holds_are_rejected():
    assert "38 significant digits" in reason(quantity="1" + "0" * 38)
    assert fields(quantity="9" * 38)["quantity"] == int("9" * 38)


def test_every_accepted_number_serializes_for_dynamodb():
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    for amount in ("1E+125", "-1E-130", "12.50", "0", "9" * 38):
        serializer.serialize(fields(amount=amount, quantity="-" + "9" * 38))


@pytest.mark.parametrize(("field", "bad"), [("quantity", "1_000"), ("amount", "1_000.50")])
def test_python_only_digit_separators_are_not_numbers(field, bad):
    # int() and Decimal() accept "1_000"; a partner file's "1_000" is a malformed value
    assert "not a" in reason(**{field: bad})


# fullwidth "12" and Arabic-Indic "3.5", written as escapes so the source stays ASCII
@pytest.mark.parametrize(
    ("field", "bad"), [("quantity", "\uff11\uff12"), ("amount", "\u0663.\u0665")]
)
def test_non_ascii_digits_are_not_numbers(field, bad):
    assert "not a" in reason(**{field: bad})


def test_json_values_in_a_string_field_keep_their_json_spelling():
    # a JSON true in a string field used to become Python's "True"
    assert fields(**{"Free Text": True})["note"] == "true"
    assert fields(**{"Free Text": False})["note"] == "false"
    assert fields(**{"Free Text": Decimal("1.50")})["note"] == "1.50"
    assert fields(**{"Free Text": 7})["note"] == "7"


@pytest.mark.parametrize("zero", ["0E-1000", "0E+500", "-0E-200"])
def test_zeros_with_exponents_dynamodb_cannot_store_are_zero(zero):
    assert fields(amount=zero)["amount"] == 0
    assert fields(amount="0.00")["amount"].as_tuple().exponent == -2  # kept as written


def build(**overrides):
    return build_item(
        FEED,
        {**ROW, **overrides},
        captures={"partner": "acme", "day": "2026-11-01"},
        source_uri="s3://b/k",
        line=7,
    )


def test_keys_longer_than_dynamodb_allows_are_row_rejects():
    with pytest.raises(RowError, match=r"pk is 3006 bytes, more than DynamoDB's 2048"):
        build(order_id="x" * 3000)
    assert len(build(order_id="x" * 2042)["pk"]) == 2048  # at the limit: kept
    with pytest.raises(RowError, match=r"sk is \d+ bytes, more than DynamoDB's 1024"):
        build_item(
            FEED,
            {**ROW, "paid": "yes"},
            captures={"partner": "é" * 600, "day": "d"},
            source_uri="s3://b/k",
            line=1,
        )


def test_an_item_over_400_kb_is_a_row_reject():
    with pytest.raises(RowError, match="more than DynamoDB's 409600-byte limit"):
        build(**{"Free Text": "x" * 410_000})
    assert build(**{"Free Text": "x" * 400_000})["note"]


def test_item_size_counts_names_and_values_as_dynamodb_does():
    from ingest.domain.records import item_size

    assert item_size({"ab": "héllo"}) == 2 + 6
    assert item_size({"n": 12345, "b": True}) == 1 + 4 + 1 + 1
