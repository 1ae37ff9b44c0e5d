"""A durable append-only JSONL log: server-assigned seq and ts, group-committed fsync, atomic batches, paged reads.

One line per record (`{"seq": 1, "ts": "...Z", ...fields}`), or one line per batch (`{"batch": [record, ...]}`) so
a batch torn by a crash is cut off whole. A write is answered only after its bytes are fsync'd; appends that arrive
while an fsync runs share the next one (group commit), and fsync runs in a worker thread. Reads go to the file by
offset through the in-memory index (shared/logindex.py); nothing but the index is held in memory. With no path the
log lives in memory only (records included): meant for development and tests.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import anyio.to_thread
import orjson
import structlog

from shared.errors import LakehouseError
from shared.jsonlog.index import LogIndex, LogSpec
from shared.jsonlog.replay import BATCH_PREFIX, BATCH_SUFFIX, replay
from shared.jsonlog.snapshot import SnapshotState, capture, write_snapshot
from shared.jsonlog.timestamps import TimestampCodec, now_micros

# The index is saved again once this much was appended (or an eighth of what the last snapshot covered, if more),
# and by a start that had to parse this much: a crash costs at most that much parsing at the next start, while
# the snapshots written over a log's life stay proportional to its size.
SNAPSHOT_AFTER_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class Stamp:
    seq: int
    ts: str


def _retrieve(future: asyncio.Future[None]) -> None:
    # The group's outcome is read by whoever still awaits it; a waiter that went away must not leave it unread.
    if not future.cancelled():
        future.exception()


class JsonLog:
    def __init__(self, path: str, spec: LogSpec, *, name: str) -> None:
        self.path = Path(path) if path else None
        self.spec = spec
        self.name = name
        self.index = LogIndex(spec)
        self.codec = TimestampCodec()
        self.log = structlog.get_logger(name)
        self._size = 0
        self._memory = bytearray()
        self._pending = bytearray()
        self._group: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._write_fd = -1
        self._read_fd = -1
        self._broken = ""
        # CRC-32 and line count of everything written, so a snapshot can say exactly which bytes it covers.
        self._crc = 0
        self._lines = 0
        self._written = 0
        self._snapshot_covered = 0
        self._snapshotting: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Replay the file (cutting a torn tail, refusing a damaged one) and open it for appends."""
        if self.path is None:
            return
        self.index, self._size = await anyio.to_thread.run_sync(self._open_file)

    def _open_file(self) -> tuple[LogIndex, int]:
        assert self.path is not None
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            # The new file's directory entry must survive a crash too.
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        self._read_fd = os.open(self.path, os.O_RDONLY)
        replayed = replay(self.path, self.spec)
        if replayed.cut_bytes:
            self.log.warning(
                "cut a torn last line left by a crash",
                path=str(self.path),
                line=replayed.cut_line,
                bytes=replayed.cut_bytes,
            )
        if replayed.snapshot_note:
            self.log.warning("index snapshot not used; replayed the whole log", reason=replayed.snapshot_note)
        self.log.info(
            "log replayed",
            path=str(self.path),
            records=replayed.index.count,
            bytes=replayed.size,
            parsed_bytes=replayed.parsed_bytes,
        )
        self._crc, self._lines, self._written = replayed.crc, replayed.lines, replayed.size
        self._snapshot_covered = replayed.size - replayed.parsed_bytes
        if replayed.parsed_bytes >= SNAPSHOT_AFTER_BYTES:
            index = replayed.index
            write_snapshot(self.path, index, self._capture(index))
            self._snapshot_covered = replayed.size
        return replayed.index, replayed.size

    def _capture(self, index: LogIndex) -> SnapshotState:
        return capture(index, rows=index.visible, covered=self._written, crc=self._crc, lines=self._lines)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._snapshotting is not None:
            await asyncio.shield(self._snapshotting)
        if self.path is not None and self._written > self._snapshot_covered and not self._broken:
            await anyio.to_thread.run_sync(write_snapshot, self.path, self.index, self._capture(self.index))
        for fd in (self._write_fd, self._read_fd):
            if fd >= 0:
                os.close(fd)
        self._write_fd = self._read_fd = -1

    def encode(self, records: Sequence[Mapping[str, Any]], ts: str) -> list[bytes]:
        """Each record as stored, checking every one before anything is kept (a batch is all or nothing)."""
        first = self.index.count + 1
        encoded = []
        for i, record in enumerate(records):
            where = f"record {i}" if len(records) > 1 else "the record"
            try:
                line = orjson.dumps({"seq": first + i, "ts": ts, **record})
            except orjson.JSONEncodeError as exc:
                raise LakehouseError("invalid_request", f"{where} cannot be stored as JSON: {exc}") from None
            if len(line) > self.spec.max_record_bytes:
                raise LakehouseError(
                    "invalid_request",
                    f"{where} is {len(line)} bytes as stored; the limit is {self.spec.max_record_bytes}",
                )
            encoded.append(line)
        return encoded

    def check_unique(self, records: Sequence[Mapping[str, Any]]) -> None:
        key_name = self.spec.unique
        if key_name is None:
            return
        keys = [record[key_name] for record in records]
        if len(set(keys)) != len(keys):
            raise LakehouseError("invalid_request", f"the batch repeats a {key_name}")
        for key in keys:
            # Pending (not yet durable) keys count too: two writers of one id must not both win.
            if key in self.index.unique:
                raise LakehouseError("already_exists", f"{key_name} {key!r} already exists")

    async def append(self, records: Sequence[Mapping[str, Any]]) -> list[Stamp]:
        """Store `records` atomically; returns once they are durable. Raises before storing anything on bad input."""
        if self._broken:
            raise LakehouseError("service_unavailable", f"{self.name} log cannot be written: {self._broken}")
        self.check_unique(records)
        micros = max(now_micros(), self.index.last_ts)
        ts = self.codec.format(micros)
        encoded = self.encode(records, ts)
        first = self.index.count + 1
        if len(encoded) == 1:
            line = encoded[0] + b"\n"
            self.index.add(self._size, len(encoded[0]), micros, records[0])
        else:
            line = BATCH_PREFIX + b",".join(encoded) + BATCH_SUFFIX + b"\n"
            position = self._size + len(BATCH_PREFIX)
            for record, data in zip(records, encoded, strict=True):
                self.index.add(position, len(data), micros, record)
                position += len(data) + 1
        self._size += len(line)
        stamps = [Stamp(first + i, ts) for i in range(len(records))]
        if self.path is None:
            self._memory += line
            self.index.publish(self.index.count)
            return stamps
        self._pending += line
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
            self._group.add_done_callback(_retrieve)
        group = self._group
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(group)
        return stamps

    async def _flush(self) -> None:
        while self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            upto = self.index.count
            group, self._group = self._group, None
            assert group is not None
            try:
                await anyio.to_thread.run_sync(self._write_durable, data)
            except OSError as exc:
                # What reached the disk is unknown now: stop taking writes rather than answer wrongly.
                self._broken = str(exc)
                self.log.error("log write failed; refusing further writes", path=str(self.path), error=str(exc))
                error = LakehouseError("service_unavailable", f"{self.name} log cannot be written: {exc}")
                group.set_exception(error)
                if self._group is not None:
                    self._group.set_exception(error)
                    self._group = None
                self._pending.clear()
                return
            self.index.publish(upto)
            group.set_result(None)
            self._maybe_snapshot()

    def _maybe_snapshot(self) -> None:
        due = max(SNAPSHOT_AFTER_BYTES, self._snapshot_covered // 8)
        if self._written - self._snapshot_covered < due or self._snapshotting is not None:
            return
        path = self.path
        assert path is not None
        state = self._capture(self.index)
        self._snapshot_covered = state.covered

        async def save() -> None:
            try:
                await anyio.to_thread.run_sync(write_snapshot, path, self.index, state)
            except OSError as exc:
                # Only the next start's speed depends on it; the log itself is intact.
                self.log.warning("could not save the index snapshot", error=str(exc))
            finally:
                self._snapshotting = None

        self._snapshotting = asyncio.create_task(save())

    def _write_durable(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]
        os.fdatasync(self._write_fd)
        self._crc = zlib.crc32(data, self._crc)
        self._lines += data.count(b"\n")
        self._written += len(data)

    async def read(self, rows: Sequence[int]) -> list[bytes]:
        """The stored JSON of each row, in the order given."""
        if not rows:
            return []
        if self.path is None:
            return self._slices(rows, lambda start, end: bytes(self._memory[start:end]))
        return await anyio.to_thread.run_sync(self._slices, rows, self._pread)

    def _pread(self, start: int, end: int) -> bytes:
        return os.pread(self._read_fd, end - start, start)

    def _slices(self, rows: Sequence[int], fetch: Any) -> list[bytes]:
        n = self.index.visible
        offsets = self.index.offsets.view(n)
        lengths = self.index.lengths.view(n)
        out: list[bytes] = []
        run_start = 0
        # Consecutive rows are read with one call: a plain page is a single read.
        for i in range(1, len(rows) + 1):
            if i < len(rows) and rows[i] == rows[i - 1] + 1:
                continue
            first, last = rows[run_start], rows[i - 1]
            base = int(offsets[first])
            data = fetch(base, int(offsets[last]) + int(lengths[last]))
            for row in rows[run_start:i]:
                start = int(offsets[row]) - base
                out.append(data[start : start + int(lengths[row])])
            run_start = i
        return out
