"""What the client asked for in the query string: the input format and the CSV options, validated once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, TypeVar, get_args

import pyarrow as pa

from services.catalogd.schemas import CommitMode
from shared.errors import LakehouseError

Format = Literal["csv", "ndjson", "parquet"]
Mode = CommitMode  # an ingest commits a dataset version the way catalogd's commit modes say

FORMATS: tuple[Format, ...] = ("csv", "ndjson", "parquet")
MODES: tuple[Mode, ...] = get_args(CommitMode)

FORMAT_BY_MEDIA_TYPE: dict[str, Format] = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json-seq": "ndjson",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}

FORMAT_BY_SUFFIX: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# The delimiter a file's name promises, where it is not a comma; `delimiter=` in the query still wins.
DELIMITER_BY_SUFFIX: dict[str, str] = {".tsv": "\t"}

# Names accepted in `types=` beyond pyarrow's own aliases (int64, float64, string, bool, date32, timestamp[us], ...).
TYPE_ALIASES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "integer": pa.int64(),
    "bigint": pa.int64(),
    "float": pa.float64(),
    "real": pa.float32(),
    "text": pa.string(),
    "str": pa.string(),
    "varchar": pa.string(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}

_DECIMAL = re.compile(r"decimal(?:128)?\((\d+),\s*(\d+)\)")
T = TypeVar("T", bound=str)
QUERY_KEYS = frozenset({"mode", "format", "delimiter", "header", "null", "types"})


def parse_type(text: str) -> pa.DataType:
    """An Arrow type from its name ("int64", "timestamp[ms]", "decimal(10,2)", "date", ...)."""
    name = text.strip().lower()
    if name in TYPE_ALIASES:
        return TYPE_ALIASES[name]
    if match := _DECIMAL.fullmatch(name):
        return pa.decimal128(int(match[1]), int(match[2]))
    try:
        return pa.type_for_alias(name)
    except ValueError:
        raise LakehouseError(
            "invalid_request",
            f'types: unknown type "{text}" (expected e.g. int64, double, string, bool, date32, timestamp[us], '
            "decimal(10,2))",
        ) from None


def parse_types(text: str) -> dict[str, pa.DataType]:
    """`col:type,col:type` → {col: type}; a column name may itself contain ':' (the type is after the last)."""
    types: dict[str, pa.DataType] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, type_name = item.rpartition(":")
        if not sep or not name:
            raise LakehouseError("invalid_request", f'types: expected "column:type" items, got "{item}"')
        types[name] = parse_type(type_name)
    return types


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    header: bool = True
    null_values: tuple[str, ...] = ("",)
    types: dict[str, pa.DataType] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestOptions:
    mode: Mode = "append"
    format: Format | None = None  # None: decided from the Content-Type or the file name
    csv: CsvOptions = field(default_factory=CsvOptions)
    delimiter_given: bool = False  # False: the file name may set it (DELIMITER_BY_SUFFIX)


def _one_of(key: str, value: str, allowed: tuple[T, ...]) -> T:
    for option in allowed:
        if value == option:
            return option
    raise LakehouseError("invalid_request", f"{key}: expected one of {', '.join(allowed)}, got {value!r}")


def _delimiter(value: str) -> str:
    value = {"\\t": "\t", "tab": "\t"}.get(value, value)
    if len(value) != 1 or value in '\r\n"':
        raise LakehouseError("invalid_request", f"delimiter: expected one character (or \\t), got {value!r}")
    return value


def parse_options(query: Mapping[str, str]) -> IngestOptions:
    unknown = sorted(set(query) - QUERY_KEYS)
    if unknown:
        raise LakehouseError(
            "invalid_request", f"unknown query parameter {unknown[0]!r}; expected {', '.join(sorted(QUERY_KEYS))}"
        )
    header = query.get("header", "true").lower()
    if header not in ("true", "false", "1", "0"):
        raise LakehouseError("invalid_request", f"header: expected true or false, got {query['header']!r}")
    extra_nulls = [v for v in query.get("null", "").split(",") if v] if "null" in query else []
    csv = CsvOptions(
        delimiter=_delimiter(query.get("delimiter", ",")),
        header=header in ("true", "1"),
        null_values=("", *extra_nulls),
        types=parse_types(query.get("types", "")),
    )
    return IngestOptions(
        mode=_one_of("mode", query.get("mode", "append"), MODES),
        format=_one_of("format", query["format"], FORMATS) if "format" in query else None,
        csv=csv,
        delimiter_given="delimiter" in query,
    )


def _suffix(filename: str | None) -> str:
    return "." + filename.rpartition(".")[2].lower() if filename and "." in filename else ""


def csv_options(options: IngestOptions, filename: str | None) -> CsvOptions:
    """The query's CSV options, with the delimiter the file's name promises (a .tsv: tab) unless the query set one."""
    delimiter = DELIMITER_BY_SUFFIX.get(_suffix(filename))
    if options.delimiter_given or delimiter is None:
        return options.csv
    return replace(options.csv, delimiter=delimiter)


def decide_format(explicit: Format | None, content_type: str, filename: str | None) -> Format:
    """The query's format=, else the Content-Type, else the file name's suffix, else CSV."""
    if explicit is not None:
        return explicit
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type in FORMAT_BY_MEDIA_TYPE:
        return FORMAT_BY_MEDIA_TYPE[media_type]
    return FORMAT_BY_SUFFIX.get(_suffix(filename), "csv")
