"""Per-key meters in one memory-mapped file: token buckets (requests, tokens per minute) and period totals (spend).

Every process that opens the same file shares the same meters — the gateway's workers share one key's requests per
minute, not one count each — and the file outlives the processes, so a restart does not reset a limit. The page
cache holds the writes: a process killed with -9 loses nothing; a power cut loses the last seconds of counts, which
is the most a limit may be off after it. Each operation holds the file's flock for a few microseconds.

The file is a header (magic, slot count) and fixed 64-byte slots: a name of at most 40 bytes, then two doubles. A
bucket keeps (level, updated at); a total keeps (amount, period start). Names are appended, never removed (a key
has three at most; 65,536 slots are 4 MiB).
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

METER_FILE = "meters"  # its name in the state directory
MAGIC = b"LHMETER1"
HEADER = struct.Struct("<8sI")  # magic, slots in use
SLOT = struct.Struct("<40sdd")  # name, then the two numbers
SLOT_BYTES = 64
MAX_SLOTS = 65_536
FILE_BYTES = SLOT_BYTES * (MAX_SLOTS + 1)  # slot 0's place holds the header


class MeterFile:
    """The meters of `path` (created if missing); `None` keeps them in this process's memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd = -1
        if path is None:
            self._map = mmap.mmap(-1, FILE_BYTES)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size < FILE_BYTES:
                os.ftruncate(self._fd, FILE_BYTES)  # sparse: the unused slots take no disk
            self._map = mmap.mmap(self._fd, FILE_BYTES)
        self._slots: dict[bytes, int] = {}
        self._seen = 0
        with self._locked():
            magic, _ = HEADER.unpack_from(self._map, 0)
            if magic != MAGIC:
                HEADER.pack_into(self._map, 0, MAGIC, 0)

    def close(self) -> None:
        self._map.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self._fd < 0:
            yield  # one process: the event loop is the lock
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot(self, name: str) -> tuple[int, bool]:
        """(offset, new) of `name`'s slot, appending one if no process has yet; call with the lock held."""
        encoded = name.encode()
        if len(encoded) > 40:
            raise ValueError(f"meter name longer than 40 bytes: {name!r}")
        index = self._slots.get(encoded)
        if index is None:
            _, used = HEADER.unpack_from(self._map, 0)
            for i in range(self._seen, used):  # slots other processes appended since this one last looked
                self._slots[SLOT.unpack_from(self._map, SLOT_BYTES * (i + 1))[0].rstrip(b"\0")] = i
            self._seen = used
            index = self._slots.get(encoded)
            if index is None:
                if used >= MAX_SLOTS:
                    raise RuntimeError(f"the meter file {self.path} is full ({MAX_SLOTS} meters)")
                index = used
                SLOT.pack_into(self._map, SLOT_BYTES * (index + 1), encoded, math.nan, 0.0)
                HEADER.pack_into(self._map, 0, MAGIC, used + 1)
                self._slots[encoded] = index
                self._seen = used + 1
        offset = SLOT_BYTES * (index + 1)
        return offset, math.isnan(SLOT.unpack_from(self._map, offset)[1])

    def _numbers(self, offset: int) -> tuple[float, float]:
        _, first, second = SLOT.unpack_from(self._map, offset)
        return first, second

    def _store(self, offset: int, name: str, first: float, second: float) -> None:
        SLOT.pack_into(self._map, offset, name.encode(), first, second)

    def take(self, name: str, capacity: float, amount: float = 1.0, now: float | None = None) -> float:
        """Take `amount` from the bucket `name` (holding `capacity`, refilled at capacity per minute): 0.0 when
        taken, else the seconds until it could be (inf when `amount` is more than the bucket ever holds).

        An amount of 0 is taken while the bucket is not empty: what a request with no reservation needs."""
        now = time.time() if now is None else now
        rate = capacity / 60.0
        with self._locked():
            offset, new = self._slot(name)
            level, updated = (capacity, now) if new else self._numbers(offset)
            level = min(capacity, level + max(0.0, now - updated) * rate)
            if level >= amount and level > 0:
                self._store(offset, name, level - amount, now)
                return 0.0
            self._store(offset, name, level, now)
        if amount > capacity:
            return math.inf
        return (max(amount, 1e-9) - level) / rate if rate > 0 else math.inf

    def adjust(self, name: str, capacity: float, amount: float, now: float | None = None) -> None:
        """Take `amount` more (or give back a negative amount) after the fact: a chat charged what it used."""
        now = time.time() if now is None else now
        with self._locked():
            offset, new = self._slot(name)
            level, updated = (capacity, now) if new else self._numbers(offset)
            level = min(capacity, level + max(0.0, now - updated) * capacity / 60.0)
            self._store(offset, name, min(capacity, level - amount), now)

    def level(self, name: str, capacity: float, now: float | None = None) -> float:
        now = time.time() if now is None else now
        with self._locked():
            offset, new = self._slot(name)
            if new:
                return capacity
            level, updated = self._numbers(offset)
        return min(capacity, level + max(0.0, now - updated) * capacity / 60.0)

    def total(self, name: str, period_start: float) -> float:
        """The amount added to `name` since `period_start`; 0 when its last addition was in an earlier period."""
        with self._locked():
            offset, new = self._slot(name)
            amount, start = (0.0, period_start) if new else self._numbers(offset)
        return amount if start == period_start else 0.0

    def add(self, name: str, period_start: float, amount: float) -> float:
        """Add `amount` to `name`'s total for the period starting at `period_start`; the new total."""
        with self._locked():
            offset, new = self._slot(name)
            current, start = (0.0, period_start) if new else self._numbers(offset)
            current = (current if start == period_start else 0.0) + amount
            self._store(offset, name, current, period_start)
        return current


class LazyMeters:
    """The meter file at `path`, opened the first time a key with a limit makes a request."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: MeterFile | None = None

    def get(self) -> MeterFile:
        if self._file is None:
            self._file = MeterFile(self.path)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
