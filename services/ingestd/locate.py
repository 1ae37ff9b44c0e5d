"""The error path: rescan the spooled upload to say exactly where a problem is (pyarrow alone names no line).

These scans are slow (Python, line by line) and run only after the fast reader has already failed.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator

import orjson
import pyarrow as pa

from services.ingestd.spool import Spool

CHUNK = 4 << 20


def _chunks(spool: Spool) -> Iterator[bytes]:
    offset = 0
    while offset < spool.size:
        data = spool.pread(min(CHUNK, spool.size - offset), offset)
        if not data:
            return
        offset += len(data)
        yield data


def _lines(spool: Spool) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its newline) for every physical line."""
    number = 0
    rest = b""
    for chunk in _chunks(spool):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            number += 1
            yield number, line.removesuffix(b"\r")
    if rest:
        yield number + 1, rest.removesuffix(b"\r")


def first_invalid_utf8(spool: Spool) -> tuple[int, bytes] | None:
    """(line number, the line) of the first line that is not valid UTF-8, or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    for chunk in _chunks(spool):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            number = lines_before + chunk.count(b"\n", 0, exc.start) + 1
            for line_number, line in _lines(spool):
                if line_number == number:
                    return number, line
            return number, b""
        lines_before += chunk.count(b"\n")
    return None


def csv_field_index(line: bytes, delimiter: str) -> int | None:
    """Which field of a single CSV line holds the first invalid UTF-8 byte."""
    text = line.decode("utf-8", errors="surrogateescape")
    for row in csv.reader([text], delimiter=delimiter):
        for index, value in enumerate(row):
            if any("\udc80" <= ch <= "\udcff" for ch in value):
                return index
    return None


def csv_record_line(spool: Spool, record: int, delimiter: str) -> int:
    """The physical line where CSV record `record` (1-based, header included) starts.

    Records and lines differ only when a quoted field holds a newline; without any quote the record is the line.
    """
    if not any(b'"' in chunk for chunk in _chunks(spool)):
        return record
    with open(spool.path, encoding="utf-8", errors="replace", newline="") as stream:
        reader = csv.reader(stream, delimiter=delimiter)
        previous_end = 0
        for count, _ in enumerate(reader, start=1):
            if count == record:
                return previous_end + 1
            previous_end = reader.line_num
    return record


# What kinds of JSON value each Arrow type accepts, for naming the first NDJSON value that does not fit.
def _fits(value: object, arrow_type: pa.DataType) -> bool:
    if value is None:
        return True
    if pa.types.is_boolean(arrow_type):
        return isinstance(value, bool)
    if pa.types.is_integer(arrow_type):
        return isinstance(value, int) and not isinstance(value, bool)
    if pa.types.is_floating(arrow_type):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return isinstance(value, str)
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return isinstance(value, str)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return isinstance(value, list) and all(_fits(v, arrow_type.value_type) for v in value)
    if pa.types.is_struct(arrow_type):
        return isinstance(value, dict) and all(
            name in {f.name for f in arrow_type} and _fits(v, arrow_type.field(name).type) for name, v in value.items()
        )
    return not pa.types.is_null(arrow_type)


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _shown(value: object) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def ndjson_problem(spool: Spool, schema: pa.Schema | None) -> str | None:
    """A message naming the first NDJSON line that is bad, or None when every line looks fine."""
    fields = {f.name: f.type for f in schema} if schema is not None else None
    for number, line in _lines(spool):
        if not line.strip():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return f"line {number}: invalid UTF-8"
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return f"line {number}: not valid JSON ({exc})"
        if not isinstance(value, dict):
            return f"line {number}: expected a JSON object, got {_kind(value)}"
        if fields is None:
            continue
        for name, item in value.items():
            if name not in fields:
                return (
                    f"line {number}: field {name!r} does not appear in the first rows, which fixed the columns "
                    f"({', '.join(fields)}); every field must appear in the first block (1 MiB) of the file"
                )
            if not _fits(item, fields[name]):
                return (
                    f"line {number}, field {name!r}: value {_shown(item)} is {_kind(item)}, but the first rows "
                    f"made this column {fields[name]}"
                )
    return None
