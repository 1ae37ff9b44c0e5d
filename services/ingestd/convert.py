"""The parser thread's whole job: spooled upload → record batches → Parquet parts, in one blocking call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from services.ingestd.options import CsvOptions, Format
from services.ingestd.parquet_writer import Part, PartWriter
from services.ingestd.readers import open_input
from services.ingestd.spool import Spool


@dataclass(frozen=True)
class Converted:
    schema: pa.Schema
    rows: int
    parts: int


@dataclass(frozen=True)
class Layout:
    """How output is cut: rows per row group, bytes per file, where part files are written."""

    row_group_rows: int = 131_072
    target_file_bytes: int = 128 << 20
    directory: str | None = None


def convert(
    spool: Spool, fmt: Format, csv_options: CsvOptions, layout: Layout, on_part: Callable[[Part], None]
) -> Converted:
    """Blocking: parse the spool as it fills and hand each finished Parquet part to `on_part`.

    Raises LakehouseError (400) for bad input, SpoolAborted when the upload stopped; the part being written is
    removed either way, finished parts already belong to `on_part`'s owner.
    """
    opened = open_input(spool, fmt, csv_options)
    writer = PartWriter(
        opened.schema,
        directory=layout.directory,
        row_group_rows=layout.row_group_rows,
        target_file_bytes=layout.target_file_bytes,
        on_part=on_part,
    )
    try:
        for batch in opened.batches:
            writer.write(batch)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return Converted(opened.schema, writer.rows, writer.parts)


def schema_fields(schema: pa.Schema) -> list[dict[str, object]]:
    """The catalog's schema form: Arrow type strings (int64, double, string, timestamp[s], ...)."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]
