"""The in-memory index of a JSONL log: where each record sits, its time, and a few fields worth filtering on.

Records themselves stay on disk. Per record the index holds an offset and a length (16 bytes), a timestamp (8),
a 4-byte code per tag field, 8 bytes for the numeric field and, for a unique key, one dict entry (~100 bytes plus
the key). Columns are numpy arrays grown by doubling: a reader holding a view keeps a consistent prefix while the
writer appends, so queries can run in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

# A filtered page scans its tag codes in windows of this many records, so it stops early when the page is full.
SCAN_WINDOW = 65_536


@dataclass(frozen=True, slots=True)
class LogSpec:
    """What a log indexes: `tags` (string fields to filter on), `number` (a float kept for summaries), `unique`
    (a string field whose values may appear once), `counted` (tags whose per-value count and first/last time are
    kept up to date)."""

    tags: tuple[str, ...] = ()
    number: str | None = None
    unique: str | None = None
    counted: tuple[str, ...] = ()
    max_record_bytes: int = 1 << 20


class Column:
    __slots__ = ("_data", "n")

    def __init__(self, dtype: npt.DTypeLike, capacity: int = 1024) -> None:
        self._data: np.ndarray[Any, Any] = np.empty(capacity, dtype=dtype)
        self.n = 0

    def append(self, value: float) -> None:
        if self.n == len(self._data):
            self._reserve(self.n + 1)
        self._data[self.n] = value
        self.n += 1

    def extend(self, values: Sequence[float] | np.ndarray[Any, Any]) -> None:
        end = self.n + len(values)
        if end > len(self._data):
            self._reserve(end)
        self._data[self.n : end] = values
        self.n = end

    def _reserve(self, size: int) -> None:
        grown = np.empty(max(size, 2 * len(self._data)), dtype=self._data.dtype)
        grown[: self.n] = self._data[: self.n]
        self._data = grown

    def view(self, n: int) -> np.ndarray[Any, Any]:
        return self._data[:n]


@dataclass(slots=True)
class KeyStats:
    count: int
    first_ts: int
    last_ts: int


@dataclass(slots=True)
class Tag:
    name: str
    codes: Column = field(default_factory=lambda: Column(np.int32))
    values: list[str] = field(default_factory=list)
    code_of: dict[str, int] = field(default_factory=dict)
    stats: dict[int, KeyStats] | None = None

    def code(self, value: str) -> int:
        code = self.code_of.get(value)
        if code is None:
            code = self.code_of[value] = len(self.values)
            self.values.append(value)
        return code


class LogIndex:
    """Index rows are records in seq order: row i holds seq i + 1. Rows below `visible` are durable and readable."""

    def __init__(self, spec: LogSpec) -> None:
        self.spec = spec
        self.offsets = Column(np.int64)
        self.lengths = Column(np.int64)
        self.ts = Column(np.int64)
        self.tags = {name: Tag(name, stats={} if name in spec.counted else None) for name in spec.tags}
        self.number = Column(np.float64) if spec.number else None
        self.unique: dict[str, int] = {}
        # The unique keys in row order too: a snapshot thread can slice a list the event loop appends to.
        self.keys: list[str] = []
        self.visible = 0

    @property
    def count(self) -> int:
        return self.ts.n

    @property
    def last_ts(self) -> int:
        return int(self.ts.view(self.ts.n)[-1]) if self.ts.n else 0

    def add(self, offset: int, length: int, ts: int, record: Mapping[str, Any]) -> None:
        """Index one record; the caller has checked its tags are strings and its unique key is new."""
        row = self.ts.n
        self.offsets.append(offset)
        self.lengths.append(length)
        self.ts.append(ts)
        for name, tag in self.tags.items():
            tag.codes.append(tag.code(record[name]))
        if self.number is not None:
            value = record.get(self.spec.number or "")
            self.number.append(np.nan if value is None else value)
        if self.spec.unique:
            key = record[self.spec.unique]
            self.unique[key] = row
            self.keys.append(key)

    def publish(self, upto: int) -> None:
        """Rows below `upto` are durable: make them readable and count them."""
        for tag in self.tags.values():
            if tag.stats is None:
                continue
            codes = tag.codes.view(upto)
            ts = self.ts.view(upto)
            for row in range(self.visible, upto):
                code = int(codes[row])
                moment = int(ts[row])
                seen = tag.stats.get(code)
                if seen is None:
                    tag.stats[code] = KeyStats(1, moment, moment)
                else:
                    seen.count += 1
                    seen.last_ts = moment
        self.visible = upto

    def tag_stats(self, name: str) -> dict[str, KeyStats]:
        tag = self.tags[name]
        return {tag.values[code]: stats for code, stats in (tag.stats or {}).items()}

    def row_of(self, key: str) -> int | None:
        row = self.unique.get(key)
        return row if row is not None and row < self.visible else None

    def first_row_at(self, n: int, ts: int) -> int:
        """The first row among the first `n` whose time is at or after `ts` (times never go backwards)."""
        return int(np.searchsorted(self.ts.view(n), ts, side="left"))

    def select(
        self,
        *,
        after: int,
        limit: int,
        since: int | None = None,
        until: int | None = None,
        where: Mapping[str, str] | None = None,
    ) -> tuple[list[int], int | None]:
        """Rows of the page after seq `after`: at most `limit`, and the seq to continue after (None at the end)."""
        n = self.visible
        start = after
        if since is not None:
            start = max(start, self.first_row_at(n, since))
        stop = n if until is None else min(n, self.first_row_at(n, until))
        codes: list[tuple[np.ndarray[Any, Any], int]] = []
        for name, value in (where or {}).items():
            tag = self.tags[name]
            code = tag.code_of.get(value)
            if code is None:
                return [], None
            codes.append((tag.codes.view(n), code))
        rows: list[int] = []
        if not codes:
            rows = list(range(start, min(stop, start + limit + 1)))
        else:
            low = start
            while low < stop and len(rows) <= limit:
                high = min(stop, low + SCAN_WINDOW)
                mask = np.ones(high - low, dtype=bool)
                for column, code in codes:
                    mask &= column[low:high] == code
                rows.extend((np.flatnonzero(mask) + low).tolist())
                low = high
        if len(rows) > limit:
            return rows[:limit], rows[limit - 1] + 1
        return rows, None
