"""Rebuilding a log's index from its JSONL file at startup.

Every line is parsed (so a damaged record is found now, not when someone reads it). A bad line with nothing but the
end of the file after it is the torn tail of a write the crash interrupted: never acknowledged, so it is cut off with
one warning. A bad line anywhere else means the file was damaged: the start stops with an error naming the line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shared.logindex import LogIndex, LogSpec
from shared.timestamps import TimestampCodec

READ_CHUNK = 16 << 20
BATCH_PREFIX = b'{"batch":['
BATCH_SUFFIX = b"]}"
# What a crash can leave after the last complete line: part of a line, or blocks of zeros the file system allocated.
TAIL_JUNK = b"\x00 \t\r\n"


class LogCorrupt(Exception):
    """A line in the middle of the log is damaged; the message names the file, the line and what is wrong."""


@dataclass(frozen=True, slots=True)
class Replayed:
    index: LogIndex
    size: int  # bytes of good lines; anything after was cut
    cut_bytes: int
    cut_line: int  # line number of the torn tail, 0 when none


class BadLine(Exception):
    pass


class Replayer:
    def __init__(self, spec: LogSpec) -> None:
        self.index = LogIndex(spec)
        self.spec = spec
        self.codec = TimestampCodec()
        self.last_ts = 0

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
        times = [self.check(record, self.index.count + 1 + i) for i, (record, _, _) in enumerate(staged)]
        if self.spec.unique is not None and len(staged) > 1:
            keys = [record[self.spec.unique] for record, _, _ in staged]
            if len(set(keys)) != len(keys):
                raise BadLine(f"duplicate {self.spec.unique} within a batch")
        for (record, position, length), ts in zip(staged, times, strict=True):
            self.index.add(position, length, ts, record)
            self.last_ts = ts

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
    """Index every line of `path` (creating nothing); cut a torn tail, raise LogCorrupt for damage before it."""
    replayer = Replayer(spec)
    offset = 0
    line_no = 0
    with path.open("rb") as file:
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
                    return _cut(path, replayer.index, offset, line_no)
                offset += len(line) + 1
            if not chunk:
                break
    if carry:
        # A last line without its newline: the write that would have finished it never happened.
        return _cut(path, replayer.index, offset, line_no + 1)
    replayer.index.publish(replayer.index.count)
    return Replayed(replayer.index, offset, 0, 0)


def _only_junk_left(pieces: list[bytes], file: Any) -> bool:
    if any(piece.strip(TAIL_JUNK) for piece in pieces):
        return False
    while chunk := file.read(READ_CHUNK):
        if chunk.strip(TAIL_JUNK):
            return False
    return True


def _cut(path: Path, index: LogIndex, good_end: int, line_no: int) -> Replayed:
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.truncate(good_end)
        os.fsync(file.fileno())
    index.publish(index.count)
    return Replayed(index, good_end, size - good_end, line_no)
