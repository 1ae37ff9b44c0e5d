"""Record-batch readers over a spooled upload, one per input format, turning pyarrow's errors into precise 400s.

Each reader runs on the parser thread and pulls from the spool while the body is still arriving. Types are inferred
from the first block (1 MiB): a later value that does not fit is an error naming the line, the column, the value
and the `types=` override, never a silently widened or dropped column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from services.ingestd import locate
from services.ingestd.options import CsvOptions, Format
from services.ingestd.spool import Spool
from shared.errors import LakehouseError

BLOCK_SIZE = 1 << 20
PARQUET_BATCH_ROWS = 65_536

_ROW = re.compile(r"Row #(\d+): Expected (\d+) columns, got (\d+): (.*)", re.S)
_CONVERSION = re.compile(r"In CSV column #(\d+): Row #(\d+): CSV conversion error to (\S+): invalid value '(.*)'", re.S)
_UTF8 = re.compile(r"In CSV column #(\d+): .*invalid UTF8", re.S)


def bad_input(message: str) -> LakehouseError:
    return LakehouseError("invalid_request", message)


@dataclass
class Opened:
    """A reader ready to stream: the schema the dataset will have, and the batches."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]


def _require_data(spool: Spool) -> None:
    if spool.wait_for(1) == 0:
        raise bad_input("empty upload: the body has no data")


def _check_names(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names, start=1):
        if not name:
            raise bad_input(f"{what} {index} has an empty name")
        if name in seen:
            raise bad_input(f"column name {name!r} appears twice")
        seen.add(name)


# ---- CSV ----------------------------------------------------------------------------------------------------------


class _CsvErrors:
    """Turns the CSV reader's ArrowInvalid into a message with the line, column and value."""

    def __init__(self, spool: Spool, options: CsvOptions) -> None:
        self.spool = spool
        self.options = options
        self.names: list[str] = []

    def line_of(self, record: int) -> int:
        return locate.csv_record_line(self.spool, record, self.options.delimiter)

    def utf8(self) -> LakehouseError:
        found = locate.first_invalid_utf8(self.spool)
        if found is None:
            return bad_input("invalid UTF-8 in the CSV")
        number, line = found
        index = locate.csv_field_index(line, self.options.delimiter)
        where = f", column {self.names[index]!r}" if index is not None and index < len(self.names) else ""
        return bad_input(f"line {number}{where}: invalid UTF-8 (text must be UTF-8 encoded)")

    def translate(self, exc: pa.ArrowInvalid) -> LakehouseError:
        message = str(exc)
        if match := _ROW.search(message):
            record, expected, got, text = match.groups()
            return bad_input(
                f"line {self.line_of(int(record))}: expected {expected} columns, got {got}: {text[:80].rstrip()}"
            )
        if match := _CONVERSION.search(message):
            index, record, type_name, value = match.groups()
            name = self.names[int(index)] if int(index) < len(self.names) else f"#{index}"
            return bad_input(
                f"line {self.line_of(int(record))}, column {name!r}: value {value[:80]!r} is not {type_name}, the type "
                f"inferred from the first rows; set the column's type with types={name}:string (or another type)"
            )
        if _UTF8.search(message) or "UTF8" in message:
            return self.utf8()
        return bad_input(f"CSV: {message}")


def _csv_reader(spool: Spool, options: CsvOptions, types: dict[str, pa.DataType]) -> pa_csv.CSVStreamingReader:
    return pa_csv.open_csv(
        spool.reader(),
        # One thread keeps row numbers in pyarrow's errors (and memory bounded: one block in flight).
        read_options=pa_csv.ReadOptions(
            block_size=BLOCK_SIZE, use_threads=False, autogenerate_column_names=not options.header
        ),
        parse_options=pa_csv.ParseOptions(delimiter=options.delimiter, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=types,
            null_values=list(options.null_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def _batches(
    reader: Iterator[pa.RecordBatch], translate: Callable[[pa.ArrowInvalid], LakehouseError]
) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = next(reader)
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise translate(exc) from None
        yield batch


def open_csv(spool: Spool, options: CsvOptions) -> Opened:
    _require_data(spool)
    errors = _CsvErrors(spool, options)
    types = dict(options.types)
    try:
        reader = _csv_reader(spool, options, types)
    except pa.ArrowInvalid as exc:
        raise errors.translate(exc) from None
    schema = reader.schema
    try:
        errors.names = schema.names
    except UnicodeDecodeError:
        raise bad_input("line 1 (the header): invalid UTF-8 (text must be UTF-8 encoded)") from None
    _check_names(schema.names, "column")
    unknown = [name for name in options.types if name not in schema.names]
    if unknown:
        raise bad_input(f"types: no column named {unknown[0]!r}; the columns are {', '.join(schema.names)}")
    if any(pa.types.is_binary(f.type) for f in schema):
        raise errors.utf8()
    # A column empty in the whole first block is typed null; reopen with it as string so later values are kept.
    nulls = {f.name: pa.string() for f in schema if pa.types.is_null(f.type)}
    if nulls:
        reader.close()
        types.update(nulls)
        reader = _csv_reader(spool, options, types)
        schema = reader.schema
    return Opened(schema, _batches(iter(reader), errors.translate))


# ---- NDJSON -------------------------------------------------------------------------------------------------------


def _ndjson_error(spool: Spool, schema: pa.Schema | None, exc: pa.ArrowInvalid) -> LakehouseError:
    if "Empty JSON" in str(exc):
        return bad_input("empty upload: the body has no JSON lines")
    return bad_input(locate.ndjson_problem(spool, schema) or f"NDJSON: {exc}")


def open_ndjson(spool: Spool) -> Opened:
    _require_data(spool)
    read_options = pa_json.ReadOptions(block_size=BLOCK_SIZE, use_threads=False)
    try:
        first = pa_json.open_json(spool.reader(), read_options=read_options)
    except pa.ArrowInvalid as exc:
        raise _ndjson_error(spool, None, exc) from None
    inferred = first.schema
    first.close()
    try:
        _check_names(inferred.names, "field")
    except UnicodeDecodeError:
        raise bad_input(locate.ndjson_problem(spool, None) or "invalid UTF-8 in a field name") from None
    # Reopened with the inferred schema and unexpected fields as errors: the streaming reader would otherwise drop a
    # field first seen after the first block without a word.
    schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in inferred])
    reader = pa_json.open_json(
        spool.reader(),
        read_options=read_options,
        parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
    )
    return Opened(schema, _valid_utf8(_batches(iter(reader), lambda exc: _ndjson_error(spool, schema, exc)), spool))


def _valid_utf8(batches: Iterator[pa.RecordBatch], spool: Spool) -> Iterator[pa.RecordBatch]:
    # pyarrow's JSON reader keeps invalid UTF-8 inside string columns; full validation catches it per batch.
    for batch in batches:
        try:
            batch.validate(full=True)
        except pa.ArrowInvalid as exc:
            raise bad_input(locate.ndjson_problem(spool, None) or f"NDJSON: {exc}") from None
        yield batch


# ---- Parquet ------------------------------------------------------------------------------------------------------

MAGIC = b"PAR1"


def open_parquet(spool: Spool) -> Opened:
    _require_data(spool)
    size = spool.wait_for(1 << 62)  # the footer is at the end: wait for the whole upload
    if size < 12 or spool.pread(4, 0) != MAGIC or spool.pread(4, size - 4) != MAGIC:
        raise bad_input("not a Parquet file: it does not start and end with the PAR1 magic bytes")
    try:
        parquet = pq.ParquetFile(spool.path)
        schema = parquet.schema_arrow
        batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    except (pa.ArrowInvalid, OSError) as exc:
        raise bad_input(f"not a valid Parquet file: {exc}") from None
    _check_names(schema.names, "column")

    def translate(exc: pa.ArrowInvalid) -> LakehouseError:
        return bad_input(f"not a valid Parquet file: {exc}")

    return Opened(schema.remove_metadata(), _batches(batches, translate))


def open_input(spool: Spool, fmt: Format, csv_options: CsvOptions) -> Opened:
    if fmt == "csv":
        return open_csv(spool, csv_options)
    if fmt == "ndjson":
        return open_ndjson(spool)
    return open_parquet(spool)
