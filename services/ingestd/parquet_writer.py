"""Record batches in, Parquet part files out: zstd, fixed-size row groups, a new file every ~target bytes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Part:
    """One finished Parquet file on local disk, ready to upload."""

    index: int
    path: Path
    rows: int
    bytes: int


class PartWriter:
    """Buffers batches into row groups of `row_group_rows` and rolls to a new file past `target_file_bytes`.

    `on_part` is called (on the writing thread) with each finished file; the caller owns it from then on.
    """

    def __init__(
        self,
        schema: pa.Schema,
        *,
        directory: str | None,
        row_group_rows: int,
        target_file_bytes: int,
        on_part: Callable[[Part], None],
    ) -> None:
        self.schema = schema
        self.directory = directory or None
        self.row_group_rows = row_group_rows
        self.target_file_bytes = target_file_bytes
        self.on_part = on_part
        self.rows = 0
        self.parts = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._sink: pa.NativeFile | None = None
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._part_rows = 0

    def _open(self) -> pq.ParquetWriter:
        fd, name = tempfile.mkstemp(prefix=f"part-{self.parts:05d}-", suffix=".parquet", dir=self.directory)
        self._path = Path(name)
        os.close(fd)
        self._sink = pa.OSFile(name, "wb")
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression="zstd")
        self._part_rows = 0
        return self._writer

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        while self._pending_rows >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        group, rest = table.slice(0, rows), table.slice(rows)
        writer = self._writer or self._open()
        writer.write_table(group, row_group_size=max(rows, 1))
        self._part_rows += group.num_rows
        self.rows += group.num_rows
        self._pending = rest.to_batches()
        self._pending_rows = rest.num_rows
        assert self._sink is not None
        if self._sink.tell() >= self.target_file_bytes:
            self._close_part()

    def _close_part(self) -> None:
        assert self._writer is not None
        assert self._sink is not None
        assert self._path is not None
        self._writer.close()
        size = self._sink.tell()
        self._sink.close()
        part = Part(self.parts, self._path, self._part_rows, size)
        self._writer = self._sink = self._path = None
        self.parts += 1
        self.on_part(part)

    def finish(self) -> None:
        """Write what is buffered and close the last file (an empty dataset still gets one file with its schema)."""
        if self._pending_rows:
            self._flush(self._pending_rows)
        if self._writer is None and self.parts == 0:
            self._open()
        if self._writer is not None:
            self._close_part()

    def abort(self) -> None:
        """Drop the file being written (finished parts belong to the caller)."""
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                assert self._sink is not None
                self._sink.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        self._writer = self._sink = self._path = None
