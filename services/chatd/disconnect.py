"""A client that goes away cancels its provider call: the awaited call (non-streaming) or the stream's pump."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar, cast

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

T = TypeVar("T")

# Most calls finish before this; only slower ones pay for a task watching the client.
LAZY_WATCH_SECS = 0.05
# nginx's "client closed request", for the access log; the client never sees it.
CLIENT_CLOSED = 499


class ClientGone(Exception):
    pass


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def until_disconnect(receive: Receive, call: Awaitable[T]) -> T:
    """Await `call`; if the client disconnects first, cancel it and raise ClientGone.

    Needs the request body to be read already (then the next receive() waits for the disconnect)."""
    task: asyncio.Future[Any] = asyncio.ensure_future(call)
    done, _ = await asyncio.wait((task,), timeout=LAZY_WATCH_SECS)
    if done:
        return cast(T, task.result())
    watcher: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(receive))
    try:
        done, _ = await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task in done:
        return cast(T, task.result())
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise ClientGone


class StreamResponse(Response):
    """A streamed body that stops (closing its source, so the upstream call too) when the client disconnects, even
    while no chunk is coming: Starlette's StreamingResponse only notices at its next write."""

    def __init__(self, body: AsyncGenerator[bytes, None], *, media_type: str, headers: dict[str, str]) -> None:
        self.source = body
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers({**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            done, _ = await asyncio.wait((pump, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not pump.done():
                pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        if pump in done:
            pump.result()

    async def _pump(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self.source:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.source.aclose()
