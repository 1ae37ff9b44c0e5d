"""Embedding with the cache in front: hits answered at once, misses sent to the backend in one batch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from services.embedd.backend import Vectors
from services.embedd.cache import CacheKey, Entry, InFlight, LruCache, cache_key
from services.embedd.routing import Route, Router
from shared.errors import LakehouseError


@dataclass(frozen=True, slots=True)
class Embedding:
    """The answer to one request: vectors in the order of the texts."""

    model: str
    vectors: Vectors
    tokens: list[int]
    cached: int

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])


class Embedder:
    def __init__(self, router: Router, *, cache_size: int) -> None:
        self.router = router
        self.cache = LruCache(cache_size)
        self._in_flight = InFlight()
        self._tasks: set[asyncio.Task[None]] = set()

    async def embed(self, model: str, texts: list[str]) -> Embedding:
        route = self.router.resolve(model)
        futures: list[asyncio.Future[Entry]] = []
        misses: dict[CacheKey, str] = {}
        for text in texts:
            key = cache_key(route.cache_scope, text)
            entry = self.cache.get(key)
            if entry is not None:
                done: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
                done.set_result(entry)
                futures.append(done)
                continue
            pending = self._in_flight.get(key)
            if pending is None:
                pending = self._in_flight.start(key)
                misses[key] = text
            futures.append(pending)
        if misses:
            # A task of its own: a client that goes away does not cancel work other requests are waiting for.
            task = asyncio.create_task(self._compute(route, misses))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        entries = await asyncio.gather(*futures)
        dims = {entry.vector.shape[0] for entry in entries}
        if len(dims) != 1:
            raise LakehouseError(
                "upstream_error", f'model "{model}" answered vectors of different lengths: {sorted(dims)}'
            )
        return Embedding(
            model=model,
            vectors=np.stack([entry.vector for entry in entries]),
            tokens=[entry.tokens for entry in entries],
            cached=len(texts) - len(misses),
        )

    async def _compute(self, route: Route, misses: dict[CacheKey, str]) -> None:
        keys = list(misses)
        try:
            batch = await route.backend.embed(route.model, list(misses.values()))
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else LakehouseError("service_unavailable", "embedd stopping")
            for key in keys:
                future = self._in_flight.get(key)
                self._in_flight.finish(key)
                if future is not None and not future.done():
                    future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for key, vector, tokens in zip(keys, batch.vectors, batch.tokens, strict=True):
            entry = Entry(vector, tokens)
            self.cache.put(key, entry)
            future = self._in_flight.get(key)
            self._in_flight.finish(key)
            if future is not None and not future.done():
                future.set_result(entry)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.router.aclose()
