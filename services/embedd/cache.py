"""The embedding cache: LRU on (model, sha256(text)), and one computation per text however many ask at once."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CacheKey = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class Entry:
    vector: npt.NDArray[np.float32]
    tokens: int


def cache_key(scope: str, text: str) -> CacheKey:
    # A digest, not the text: keys stay small however long the texts are.
    return scope, hashlib.sha256(text.encode()).digest()


class LruCache:
    """At most `capacity` entries, the least recently used dropped first; capacity 0 keeps nothing."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: CacheKey, entry: Entry) -> None:
        if self.capacity == 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


class InFlight:
    """Futures for texts being computed now, so a second request for the same text waits instead of recomputing."""

    def __init__(self) -> None:
        self._futures: dict[CacheKey, asyncio.Future[Entry]] = {}

    def get(self, key: CacheKey) -> asyncio.Future[Entry] | None:
        return self._futures.get(key)

    def start(self, key: CacheKey) -> asyncio.Future[Entry]:
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        # A failure nobody waits for any more (its requests went away) must not be logged as "never retrieved".
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._futures[key] = future
        return future

    def finish(self, key: CacheKey) -> None:
        self._futures.pop(key, None)
