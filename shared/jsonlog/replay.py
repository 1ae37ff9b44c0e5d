"""Rebuilding a log's index from its JSONL file at startup.

Every line is parsed (so a damaged record is found now, not when someone reads it). A bad line with nothing but the
end of the file after it is the torn tail of a write the crash interrupted: never acknowledged, so it is cut off with
one warning. A bad line anywhere else means the file was damaged: the start stops with an error naming the line.
"""

from __future__ import annotations

import os
import zlib
from array import array
from dataclasses import dataclass
from math import nan
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from shared.errors import StartupFailed
from shared.jsonlog.index import LogIndex, LogSpec
from shared.jsonlog.snapshot import Snapshot, read_snapshot, restore
from shared.jsonlog.timestamps import TimestampCodec

READ_CHUNK = 16 << 20
BATCH_PREFIX = b'{"batch":['
BATCH_SUFFIX = b"]}"
# What a crash can leave after the last complete line: part of a line, or blocks of zeros the file system allocated.
TAIL_JUNK = b"\x00 \t\r\n"


class LogCorrupt(StartupFailed):
    """A line in the middle of the log is damaged; the message names the file, the line and what is wrong."""


@dataclass(frozen=True, slots=True)
class Replayed:
    index: LogIndex
    size: int  # bytes of good lines; anything after was cut
    crc: int  # CRC-32 of those bytes
    lines: int
    parsed_bytes: int  # how much was parsed rather than taken from the snapshot
    cut_bytes: int = 0
    cut_line: int = 0  # line number of the torn tail, 0 when none
    snapshot_note: str = ""  # why a snapshot next to the log was not used


class BadLine(Exception):
    pass


class Replayer:
    """Stages the index in flat arrays (cheap to append to) and hands them to the LogIndex once, at the end."""

    def __init__(self, spec: LogSpec) -> None:
        self.index = LogIndex(spec)
        self.spec = spec
        self.codec = TimestampCodec()
        self.last_ts = 0
        self.count = 0
        self.offsets = array("q")
        self.lengths = array("q")
        self.times = array("q")
        self.tags = [(name, self.index.tags[name], array("i")) for name in spec.tags]
        self.numbers = array("d")

    def line(self, line: bytes, offset: int) -> None:
        """Index the records of one line, all or none (a batch line holds several)."""
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadLine(f"not JSON ({exc})") from None
        staged: list[tuple[dict[str, Any], int, int]] = []
        if line.startswith(BATCH_PREFIX):
            records = parsed.get("batch") if isinstance(parsed, dict) else None
            if not isinstance(records, list) or not records:
                raise BadLine('a batch line must be {"batch": [records...]}')
            position = offset + len(BATCH_PREFIX)
            for record in records:
                length = len(orjson.dumps(record))
                staged.append((record, position, length))
                position += length + 1
            if position - 1 + len(BATCH_SUFFIX) != offset + len(line):
                raise BadLine("batch line does not re-encode to its own bytes")
        else:
            staged.append((parsed, offset, len(line)))
        times = [self.check(record, self.count + 1 + i) for i, (record, _, _) in enumerate(staged)]
        if self.spec.unique is not None and len(staged) > 1:
            keys = [record[self.spec.unique] for record, _, _ in staged]
            if len(set(keys)) != len(keys):
                raise BadLine(f"duplicate {self.spec.unique} within a batch")
        for (record, position, length), ts in zip(staged, times, strict=True):
            self.take(record, position, length, ts)

    def take(self, record: dict[str, Any], offset: int, length: int, ts: int) -> None:
        self.offsets.append(offset)
        self.lengths.append(length)
        self.times.append(ts)
        for name, tag, codes in self.tags:
            value = record[name]
            code = tag.code_of.get(value)
            codes.append(tag.code(value) if code is None else code)
        if self.spec.number is not None:
            number = record.get(self.spec.number)
            self.numbers.append(nan if number is None else number)
        if self.spec.unique is not None:
            key = record[self.spec.unique]
            self.index.unique[key] = self.count
            self.index.keys.append(key)
        self.count += 1
        self.last_ts = ts

    def restore(self, snapshot: Snapshot) -> None:
        restore(self.index, snapshot)
        self.count = self.index.count
        self.last_ts = self.index.last_ts

    def finish(self) -> LogIndex:
        index = self.index
        index.offsets.extend(np.frombuffer(self.offsets, dtype=np.int64))
        index.lengths.extend(np.frombuffer(self.lengths, dtype=np.int64))
        index.ts.extend(np.frombuffer(self.times, dtype=np.int64))
        for _, tag, codes in self.tags:
            tag.codes.extend(np.frombuffer(codes, dtype=np.int32))
        if index.number is not None:
            index.number.extend(np.frombuffer(self.numbers, dtype=np.float64))
        index.publish(index.count)
        return index

    def check(self, record: Any, expected_seq: int) -> int:
        """The record's time in microseconds, once everything the index relies on is checked."""
        if not isinstance(record, dict):
            raise BadLine("a record must be a JSON object")
        seq = record.get("seq")
        if seq != expected_seq:
            raise BadLine(f"seq is {seq!r}, expected {expected_seq}")
        try:
            ts = self.codec.parse(record.get("ts") or "")
        except (ValueError, TypeError) as exc:
            raise BadLine(f"bad ts: {exc}") from None
        if ts < self.last_ts:
            raise BadLine("ts goes backwards")
        for name in self.spec.tags:
            if not isinstance(record.get(name), str):
                raise BadLine(f"field {name!r} must be a string")
        if self.spec.number is not None:
            value = record.get(self.spec.number)
            if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
                raise BadLine(f"field {self.spec.number!r} must be a number")
        if self.spec.unique is not None:
            key = record.get(self.spec.unique)
            if not isinstance(key, str):
                raise BadLine(f"field {self.spec.unique!r} must be a string")
            if key in self.index.unique:
                raise BadLine(f"duplicate {self.spec.unique} {key!r}")
        return ts


def replay(path: Path, spec: LogSpec) -> Replayed:
    """Index every line of `path` (using its snapshot for the prefix it covers, if intact); cut a torn tail, raise
    LogCorrupt for damage before it."""
    replayer = Replayer(spec)
    snapshot, note = read_snapshot(path, spec)
    offset = line_no = crc = 0
    with path.open("rb") as file:
        if snapshot is not None:
            if _crc_of_prefix(file, snapshot.covered) == snapshot.crc:
                replayer.restore(snapshot)
                offset, line_no, crc = snapshot.covered, snapshot.lines, snapshot.crc
            else:
                note = "the log's bytes differ from the ones it indexed"
                file.seek(0)
        start = offset
        carry = b""
        while True:
            chunk = file.read(READ_CHUNK)
            buffer = carry + chunk if carry else chunk
            lines = buffer.split(b"\n")
            carry = lines.pop() if chunk else b""
            for position, line in enumerate(lines):
                line_no += 1
                try:
                    replayer.line(line, offset)
                except BadLine as exc:
                    rest = [*lines[position + 1 :], carry]
                    if not _only_junk_left(rest, file):
                        raise LogCorrupt(f"{path}: line {line_no} is damaged: {exc}") from None
                    return _cut(path, replayer, offset, line_no - 1, start, note)
                offset += len(line) + 1
            crc = zlib.crc32(memoryview(buffer)[: len(buffer) - len(carry)], crc)
            if not chunk:
                break
    if carry:
        # A last line without its newline: the write that would have finished it never happened.
        return _cut(path, replayer, offset, line_no, start, note)
    return Replayed(replayer.finish(), offset, crc, line_no, offset - start, snapshot_note=note)


def _crc_of_prefix(file: Any, size: int) -> int:
    crc = 0
    left = size
    while left > 0:
        chunk = file.read(min(READ_CHUNK, left))
        if not chunk:
            return -1
        crc = zlib.crc32(chunk, crc)
        left -= len(chunk)
    return crc


def _only_junk_left(pieces: list[bytes], file: Any) -> bool:
    if any(piece.strip(TAIL_JUNK) for piece in pieces):
        return False
    while chunk := file.read(READ_CHUNK):
        if chunk.strip(TAIL_JUNK):
            return False
    return True


def _cut(path: Path, replayer: Replayer, good_end: int, good_lines: int, start: int, note: str) -> Replayed:
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.truncate(good_end)
        os.fsync(file.fileno())
        file.seek(0)
        crc = _crc_of_prefix(file, good_end)
    return Replayed(
        replayer.finish(), good_end, crc, good_lines, good_end - start, size - good_end, good_lines + 1, note
    )
