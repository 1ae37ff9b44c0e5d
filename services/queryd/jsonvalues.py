"""SQL values as JSON, as lossless as JSON allows (the README's table of forms is the contract).

- integers: numbers up to 64 bits (BIGINT, UBIGINT); wider ones (HUGEINT) as decimal strings
- DOUBLE / REAL: numbers; NaN, Infinity, -Infinity as the strings "NaN", "Infinity", "-Infinity"
- DECIMAL(p, s): a string with exactly s decimals ("12.30"), so no digit is lost to a binary float
- DATE "2024-01-02"; TIME "10:11:12.5"; TIMESTAMP "2024-01-02T03:04:05.123456"; TIMESTAMPTZ with "+00:00";
  TIMESTAMP_NS with nine decimals
- INTERVAL {"months", "days", "nanoseconds"}; BLOB base64; UUID a string; NULL null
- LIST arrays; STRUCT objects; MAP arrays of [key, value] pairs (keys need not be strings)
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa

_FLOATS = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else _FLOATS[value]


def _decimal(value: decimal.Decimal) -> Any:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0 and -(1 << 63) <= value < (1 << 64):
        return int(value)
    return str(value)


def _fix(value: Any) -> Any:
    """Python values from Arrow into their JSON forms, recursively (only where plain orjson would lose something)."""
    if value is None or isinstance(value, str | bool | int | datetime.date | datetime.time):
        return value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, list):
        return [_fix(v) for v in value]
    if isinstance(value, tuple):
        if type(value).__name__ == "MonthDayNano":
            return {"months": value[0], "days": value[1], "nanoseconds": value[2]}
        return [_fix(v) for v in value]
    if isinstance(value, dict):
        return {k: _fix(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _plain(array: pa.Array) -> list[Any]:
    values: list[Any] = array.to_pylist()
    return values


def _with(convert: Callable[[Any], Any]) -> Callable[[pa.Array], list[Any]]:
    def column(array: pa.Array) -> list[Any]:
        return [None if v is None else convert(v) for v in array.to_pylist()]

    return column


def _nanos(array: pa.Array) -> list[Any]:
    # datetime has microseconds only: keep all nine digits through Arrow's own formatting.
    return [None if v is None else v.replace(" ", "T", 1) for v in array.cast(pa.string()).to_pylist()]


def _floats(array: pa.Array) -> list[Any]:
    values: list[Any] = array.to_pylist()
    if array.null_count == len(array):
        return values
    return [None if v is None else _float(v) for v in values]


def column_converter(arrow_type: pa.DataType) -> Callable[[pa.Array], list[Any]]:
    """How one column of this Arrow type becomes a list of JSON-ready Python values."""
    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "ns":
        return _nanos
    if pa.types.is_floating(arrow_type):
        return _floats
    if pa.types.is_decimal(arrow_type):
        return _with(_decimal)
    if (
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
    ):
        return _with(lambda v: base64.b64encode(v).decode())
    if pa.types.is_nested(arrow_type) or pa.types.is_interval(arrow_type) or pa.types.is_dictionary(arrow_type):
        return _with(_fix)
    return _plain


# DuckDB types (DuckDBPyType.id) whose Python values, as the cursor's fetchmany gives them, take exactly the JSON forms
# their Arrow values take above; a result of only these skips Arrow (formats.json_result). Dates and times are not
# among them: DuckDB turns 'infinity' into date.max / datetime.max, which Arrow refuses.
DIRECT_TYPES = frozenset(
    {
        "boolean",
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "float",
        "double",
        "decimal",
        "varchar",
    }
)


def direct_converter(type_id: str) -> Callable[[Any], Any] | None:
    """How a non-null value of a DIRECT_TYPES column becomes its JSON form; None when it already is one."""
    if type_id in ("float", "double"):
        return _float
    if type_id == "decimal":
        return _decimal
    return None


def batch_columns(batch: pa.RecordBatch) -> list[list[Any]]:
    return [column_converter(column.type)(column) for column in batch.columns]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_fix)
