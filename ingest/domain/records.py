"""Typed fields, key templates and DynamoDB items."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, DecimalException, InvalidOperation
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT
from msgspec import Struct

from ingest.domain.feed_types import Feed, FieldSpec, FieldType
from ingest.errors import RowError

#: DynamoDB numbers carry at most 38 significant digits, with magnitudes from 1E-130 up to
#: 9.99...E+125. A value outside these fails the whole BatchWriteItem, so it is a row reject.
_MAX_DIGITS = 38
_MIN_MAGNITUDE = Decimal("1E-130")
_MAX_MAGNITUDE = Decimal("1E+126")
#: DynamoDB's own limits on an item: a row that breaks one would fail its whole batch, so it is
#: a reject with a reason instead.
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_ITEM_BYTES = 400 * 1024
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
#: a decimal that needs none of the checks below (the common case, matched in C)
_PLAIN_INT = re.compile(r"-?[0-9]{1,38}")
_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,17})?")
#: UTF-8 takes at most 4 bytes a character: keys this short, or an item this small, cannot
#: break DynamoDB's limits, and need no encoding to tell
_PK_SAFE_CHARS = MAX_PARTITION_KEY_BYTES // 4
_SK_SAFE_CHARS = MAX_SORT_KEY_BYTES // 4
_NUMBER_MAX_BYTES = 21
_FALSE = frozenset({"false", "f", "no", "n", "0"})


class RecordRow(Struct, frozen=True):
    """One record's item, with where it came from (for a reject)."""

    line: int
    raw: str
    item: dict[str, Any]


def _as_text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else str(value)


def _to_string(value: Any, spec: FieldSpec) -> str:
    if isinstance(value, (dict, list)):
        raise RowError(f"field {spec.name!r}: expected a string, got a JSON {type(value).__name__}")
    if isinstance(value, (dt.date, dt.time)):  # a typed spreadsheet cell
        return value.isoformat()
    # a JSON true/false keeps its JSON spelling, not Python's "True"
    return value if isinstance(value, str) else _key_value(value)


def _number_text(value: Any, spec: FieldSpec, kind: str) -> str:
    """The text of a number; Python-only forms (``1_000``, non-ASCII digits) are refused."""
    text = _as_text(value)
    if "_" in text or not text.isascii():
        raise RowError(f"field {spec.name!r}: not {kind}: {value!r}")
    return text


def _to_int(value: Any, spec: FieldSpec) -> int:
    if type(value) is str and _PLAIN_INT.fullmatch(text := value.strip()):
        return int(text)  # the common case: plain ASCII digits that fit DynamoDB's 38
    if isinstance(value, (bool, float)):
        raise RowError(f"field {spec.name!r}: not an integer: {value!r}")
    try:
        number = value if isinstance(value, int) else int(_number_text(value, spec, "an integer"))
    except ValueError:
        raise RowError(f"field {spec.name!r}: not an integer: {value!r}") from None
    if len(str(abs(number))) > _MAX_DIGITS:
        raise RowError(f"field {spec.name!r}: more than {_MAX_DIGITS} significant digits")
    return number


def _to_decimal(value: Any, spec: FieldSpec) -> Decimal:
    if type(value) is str and _PLAIN_DECIMAL.fullmatch(plain := value.strip()):
        # at most 37 digits, below 1E+20 and (unless zero) at least 1E-17: always within
        # DynamoDB's number range, and stored exactly as written
        return Decimal(plain)
    if isinstance(value, bool):
        raise RowError(f"field {spec.name!r}: not a decimal: {value!r}")
    # JSON numbers arrive as Decimal (we parse JSON with parse_float=Decimal), never float.
    text = value if isinstance(value, Decimal) else _number_text(value, spec, "a decimal")
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        raise RowError(f"field {spec.name!r}: not a decimal: {value!r}") from None
    if not number.is_finite():
        raise RowError(f"field {spec.name!r}: not a finite decimal: {value!r}")
    if len(number.as_tuple().digits) > _MAX_DIGITS:
        raise RowError(f"field {spec.name!r}: more than {_MAX_DIGITS} significant digits")
    if not number:
        # 0E-1000 and 0E+500 are zero, but their exponents are outside DynamoDB's range
        return number if _storable(number) else Decimal(0)
    # copy_abs, unlike abs(), does not round to the context precision (28 digits)
    if not _MIN_MAGNITUDE <= number.copy_abs() < _MAX_MAGNITUDE:
        raise RowError(f"field {spec.name!r}: {value!r} is outside DynamoDB's number range")
    if not _storable(number):
        raise RowError(f"field {spec.name!r}: {value!r} is not a DynamoDB number")
    return number


def _storable(number: Decimal) -> bool:
    """Whether boto3's serializer takes it as it is: no rounding, clamping or overflow."""
    try:
        DYNAMODB_CONTEXT.create_decimal(number)
    except DecimalException:
        return False
    return True


def _to_bool(value: Any, spec: FieldSpec) -> bool:
    if isinstance(value, bool):
        return value
    text = _as_text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowError(f"field {spec.name!r}: not a boolean: {value!r}")


def _to_date(value: Any, spec: FieldSpec) -> str:
    if isinstance(value, dt.datetime):  # an Excel date cell
        if value.time() != dt.time():
            raise RowError(f"field {spec.name!r}: a date, not a date and time: {value}")
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = _as_text(value)
    try:
        if spec.date_format:
            return dt.datetime.strptime(text, spec.date_format).date().isoformat()
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        expected = spec.date_format or "YYYY-MM-DD"
        raise RowError(f"field {spec.name!r}: not a date ({expected}): {value!r}") from None


def _to_timestamp(value: Any, spec: FieldSpec) -> str:
    if isinstance(value, dt.datetime):  # an Excel date-and-time cell
        return value.isoformat()
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time()).isoformat()
    text = _as_text(value)
    try:
        if spec.date_format:
            return dt.datetime.strptime(text, spec.date_format).isoformat()
        return dt.datetime.fromisoformat(text).isoformat()
    except ValueError:
        expected = spec.date_format or "ISO 8601"
        raise RowError(f"field {spec.name!r}: not a timestamp ({expected}): {value!r}") from None


_CONVERTERS: dict[FieldType, Callable[[Any, FieldSpec], Any]] = {
    FieldType.STRING: _to_string,
    FieldType.INT: _to_int,
    FieldType.DECIMAL: _to_decimal,
    FieldType.BOOL: _to_bool,
    FieldType.DATE: _to_date,
    FieldType.TIMESTAMP: _to_timestamp,
}


def typed_fields(feed: Feed, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and convert one raw record (column/key → value) to the feed's typed fields.

    Empty optional values are left out of the item; an empty or missing required value, or a
    value of the wrong type, raises ``RowError`` with a reason naming the field.
    """
    out: dict[str, Any] = {}
    for spec in feed.fields:
        value = raw.get(spec.source)
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.required:
                raise RowError(f"field {spec.name!r}: required but empty")
            continue
        out[spec.name] = _CONVERTERS[spec.type](value, spec)
    return out


def _key_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_item(
    feed: Feed,
    raw: Mapping[str, Any],
    *,
    captures: Mapping[str, str],
    source_uri: str,
    line: int,
) -> dict[str, Any]:
    """The DynamoDB item for one raw record (deterministic, so a replay rewrites it)."""
    fields = typed_fields(feed, raw)
    values = {**captures, **{k: _key_value(v) for k, v in fields.items()}}
    try:
        pk = feed.key.pk.format_map(values)
        sk = feed.key.sk.format_map(values)
    except KeyError as exc:
        raise RowError(f"key field {exc.args[0]!r} is empty") from None
    if not pk or not sk:
        raise RowError("the record's key is empty")
    if len(pk) > _PK_SAFE_CHARS:
        _check_key_size("pk", pk, MAX_PARTITION_KEY_BYTES)
    if len(sk) > _SK_SAFE_CHARS:
        _check_key_size("sk", sk, MAX_SORT_KEY_BYTES)
    item = {
        **fields,
        "pk": pk,
        "sk": sk,
        "_feed": feed.name,
        "_source": source_uri,
        "_line": line,
    }
    if not _surely_small(item) and (size := item_size(item)) > MAX_ITEM_BYTES:
        raise RowError(
            f"the record's item is {size} bytes, more than DynamoDB's {MAX_ITEM_BYTES}-byte limit"
        )
    return item


def _surely_small(item: Mapping[str, Any]) -> bool:
    """An upper bound of the item's size (4 bytes a character, 21 a number) is within the
    limit: true for nearly every row, without encoding anything."""
    chars = 0
    for name, value in item.items():
        chars += len(name) + (len(value) if type(value) is str else 0)
    return 4 * chars + _NUMBER_MAX_BYTES * len(item) <= MAX_ITEM_BYTES


def _check_key_size(name: str, value: str, limit: int) -> None:
    size = len(value.encode("utf-8"))
    if size > limit:
        raise RowError(f"the record's {name} is {size} bytes, more than DynamoDB's {limit}")


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bool):
        return 1
    if isinstance(value, (int, Decimal)):
        # DynamoDB: about one byte per two significant digits, plus one (at most 21)
        digits = len(Decimal(value).as_tuple().digits)
        return min(21, (digits + 1) // 2 + 1)
    raise TypeError(f"unexpected item value {type(value).__name__}")


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values, in bytes."""
    return sum(len(name.encode("utf-8")) + _value_size(v) for name, v in item.items())
