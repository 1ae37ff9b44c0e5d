"""An HTTP/1.1 upstream on raw sockets, for misbehaving exactly as a test needs (the pooled client's edge cases)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Callable
from typing import cast


class RawUpstream:
    """An HTTP/1.1 server on raw sockets, to misbehave exactly: `plan(n_connection, n_request)` says what to do
    with each request: "answer", "hang up" (close unanswered), "close header" (answer with Connection: close but
    keep the socket open) or "stall" (read nothing after the request head)."""

    def __init__(self, plan: Callable[[int, int], str]) -> None:
        self.plan = plan
        self.connections = 0
        self.requests: list[bytes] = []
        self.handlers: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(cast("asyncio.Task[None]", task))
        try:
            for index in itertools.count(1):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                action = self.plan(number, index)
                if action == "stall":
                    await asyncio.sleep(3600)  # reads nothing more: the client's writes back up
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                self.requests.append(body)
                if action == "hang up":
                    return
                extra = b"Connection: close\r\n" if action == "close header" else b""
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + extra + b"\r\nok")
                await writer.drain()
                if action == "close header":
                    await asyncio.sleep(30)  # says close, keeps the socket: only the header tells the client
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.close()
            for handler in self.handlers:
                handler.cancel()
            await asyncio.gather(*self.handlers, return_exceptions=True)
