"""The converter alone (no HTTP): spooled bytes → Parquet parts, and the 400s for every kind of bad input."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.ingestd.convert import Converted, Layout, convert
from services.ingestd.options import FORMATS, CsvOptions, Format, parse_options
from services.ingestd.parquet_writer import Part
from services.ingestd.spool import Spool, SpoolAborted
from shared.errors import LakehouseError


def run(
    data: bytes, fmt: Format = "csv", csv: CsvOptions | None = None, layout: Layout | None = None
) -> tuple[Converted, list[Part]]:
    spool = Spool()
    parts: list[Part] = []
    try:
        spool.append(data)
        spool.finish()
        result = convert(spool, fmt, csv or CsvOptions(), layout or Layout(), parts.append)
    finally:
        spool.close()
    return result, parts


def table_of(parts: list[Part]) -> pa.Table:
    return pa.concat_tables([pq.read_table(p.path) for p in parts])


def error_of(data: bytes, fmt: Format = "csv", csv: CsvOptions | None = None) -> str:
    with pytest.raises(LakehouseError) as caught:
        run(data, fmt, csv)
    assert caught.value.status == 400
    return caught.value.message


def many_ints(rows: int) -> bytes:
    return b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(rows))


def test_csv_types_and_values_survive() -> None:
    result, parts = run(b"id,price,ok,day,name\n1,2.5,true,2024-01-02,a\n2,,false,2024-01-03,\n")
    table = table_of(parts)
    assert [str(f.type) for f in result.schema] == ["int64", "double", "bool", "date32[day]", "string"]
    assert table.to_pylist()[1] == {"id": 2, "price": None, "ok": False, "day": table[3][1].as_py(), "name": None}
    assert result.rows == 2
    assert pq.ParquetFile(parts[0].path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_csv_options_delimiter_header_null_types() -> None:
    options = parse_options({"delimiter": ";", "header": "false", "null": "NA,-", "types": "f0:string"})
    result, parts = run(b"007;NA\n8;-\n9;3\n", csv=options.csv)
    assert result.schema.names == ["f0", "f1"]
    assert table_of(parts).to_pylist() == [{"f0": "007", "f1": None}, {"f0": "8", "f1": None}, {"f0": "9", "f1": 3}]


def test_types_naming_an_unknown_column_or_type_is_an_error() -> None:
    assert "no column named 'zz'" in error_of(b"a\n1\n", csv=parse_options({"types": "zz:int64"}).csv)
    with pytest.raises(LakehouseError, match='unknown type "nonsense"'):
        parse_options({"types": "a:nonsense"})


def test_ragged_row_names_its_line() -> None:
    assert error_of(b"a,b\n1,2\n3,4\n5\n").startswith("line 4: expected 2 columns, got 1")


def test_ragged_row_line_counts_newlines_inside_quotes() -> None:
    assert error_of(b'a,b\n1,"two\nlines"\n3,4,5\n').startswith("line 4: expected 2 columns, got 3")


def test_value_not_fitting_the_inferred_type_names_column_line_value_and_hint() -> None:
    data = many_ints(150_000) + b"A0,late\n"
    message = error_of(data)
    assert "line 150002, column 'id': value 'A0' is not int64" in message
    assert "types=id:string" in message


def test_the_types_hint_works() -> None:
    data = many_ints(150_000) + b"A0,late\n"
    result, parts = run(data, csv=parse_options({"types": "id:string"}).csv)
    assert result.rows == 150_001
    assert table_of(parts)["id"][-1].as_py() == "A0"


def test_invalid_utf8_in_the_first_block() -> None:
    assert error_of(b"a,b\n1,ok\n2,caf\xe9\n") == "line 3, column 'b': invalid UTF-8 (text must be UTF-8 encoded)"


def test_invalid_utf8_after_the_first_block() -> None:
    message = error_of(many_ints(150_000) + b"7,caf\xe9\n")
    assert message == "line 150002, column 'name': invalid UTF-8 (text must be UTF-8 encoded)"


def test_invalid_utf8_in_the_header() -> None:
    assert "line 1 (the header): invalid UTF-8" in error_of(b"a,\xff\n1,2\n")


def test_empty_upload() -> None:
    for fmt in FORMATS:
        assert error_of(b"", fmt).startswith("empty upload")


def test_header_only_csv_is_an_empty_dataset_with_its_columns() -> None:
    result, parts = run(b"a,b\n")
    assert result.rows == 0
    assert len(parts) == 1
    assert pq.read_table(parts[0].path).column_names == ["a", "b"]


def test_duplicate_column_names_are_refused() -> None:
    assert error_of(b"a,a\n1,2\n") == "column name 'a' appears twice"


def test_a_column_empty_in_the_first_block_keeps_later_values() -> None:
    data = b"id,note\n" + b"".join(b"%d,\n" % i for i in range(150_000)) + b"9,late\n"
    result, parts = run(data)
    assert str(result.schema.field("note").type) == "string"
    assert table_of(parts)["note"][-1].as_py() == "late"


def test_ndjson_types_and_values() -> None:
    data = b'{"a": 1, "s": "x", "l": [1, 2], "o": {"k": true}}\n\n{"a": 2, "s": null}\n'
    result, parts = run(data, "ndjson")
    assert result.rows == 2
    assert table_of(parts).to_pylist()[0] == {"a": 1, "s": "x", "l": [1, 2], "o": {"k": True}}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a": 1}\n[1, 2]\n', "line 2: expected a JSON object, got an array"),
        (b'{"a": 1}\n"x"\n', "line 2: expected a JSON object, got a string"),
        (b'{"a": 1}\n{"a": \n', "line 2: not valid JSON"),
        (b'{"a": "caf\xe9"}\n', "line 1: invalid UTF-8"),
    ],
)
def test_bad_ndjson_lines(data: bytes, expected: str) -> None:
    assert error_of(data, "ndjson").startswith(expected)


def test_ndjson_field_first_seen_late_is_an_error_not_dropped() -> None:
    data = b'{"a": 1}\n' * 150_000 + b'{"a": 2, "b": 3}\n'
    assert error_of(data, "ndjson").startswith("line 150001: field 'b' does not appear in the first rows")


def test_ndjson_type_change_late_names_line_and_field() -> None:
    data = b'{"a": 1}\n' * 150_000 + b'{"a": "x"}\n'
    assert error_of(data, "ndjson").startswith("line 150001, field 'a': value \"x\" is a string")


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_parquet_is_rewritten_with_its_schema() -> None:
    table = pa.table({"x": pa.array([1, 2, 3], pa.int32()), "t": pa.array(["a", None, "c"])})
    result, parts = run(parquet_bytes(table), "parquet")
    assert result.schema == table.schema
    assert table_of(parts).equals(table)


@pytest.mark.parametrize("data", [b"a,b\n1,2\n", b"PAR1 but not really PAR1", b"PAR1" + b"\0" * 20 + b"PAR1"])
def test_not_parquet(data: bytes) -> None:
    assert error_of(data, "parquet").startswith(("not a Parquet file", "not a valid Parquet file"))


def test_large_input_is_split_into_files_of_fixed_row_groups() -> None:
    layout = Layout(row_group_rows=10_000, target_file_bytes=100_000)
    result, parts = run(many_ints(95_000), layout=layout)
    assert result.rows == 95_000
    assert len(parts) > 1
    assert sum(p.rows for p in parts) == 95_000
    groups = [pq.ParquetFile(p.path).metadata.row_group(i).num_rows for p in parts for i in range(p_groups(p.path))]
    assert set(groups[:-1]) == {10_000}
    assert table_of(parts)["id"].to_pylist() == list(range(95_000))


def p_groups(path: Path) -> int:
    return int(pq.ParquetFile(path).metadata.num_row_groups)


def test_parses_while_the_body_is_still_arriving() -> None:
    spool = Spool()
    parts: list[Part] = []
    layout = Layout(row_group_rows=1000, target_file_bytes=1)
    first_part = threading.Event()

    def on_part(part: Part) -> None:
        parts.append(part)
        first_part.set()

    result: list[Converted] = []
    worker = threading.Thread(target=lambda: result.append(convert(spool, "csv", CsvOptions(), layout, on_part)))
    worker.start()
    try:
        spool.append(many_ints(300_000))
        # A part is finished before the upload ends: the parser did not wait for the whole body.
        assert first_part.wait(timeout=60)
        spool.append(b"300000,last\n")
        spool.finish()
        worker.join()
    finally:
        spool.close()
    assert result[0].rows == 300_001


def test_an_aborted_upload_stops_the_parser() -> None:
    spool = Spool()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            convert(spool, "csv", CsvOptions(), Layout(), lambda part: None)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    spool.append(b"a,b\n1,2\n")
    spool.abort()
    worker.join()
    spool.close()
    assert errors
    assert isinstance(errors[0], SpoolAborted | LakehouseError) or "aborted" in str(errors[0])
