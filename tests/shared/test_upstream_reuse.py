"""When the pool may reuse an upstream connection, seen from the upstream's side of the wire.

Driven through the gateway (the pool's main user) with raw asyncio upstreams that decide exactly when a
connection ends. POST, because the pool silently resends a GET that hit a dead connection, which would hide
a reused dead connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from gateway.app import create_app
from shared.config import load_config
from tests.support.servers import run_server

# Deadlock guard only; nothing here measures time.
STUCK_SECS = 10


class OneRequestPerConnection:
    """Answers one request per connection, numbering its connections; what it does next is up to the test."""

    def __init__(self, *, say_close: bool, hang_up: bool) -> None:
        self.say_close = say_close
        self.hang_up = hang_up
        self.connections = 0
        self.closed = asyncio.Event()
        self.open_writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = str(self.connections).encode()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")),
            0,
        )
        await reader.readexactly(length)
        close = b"Connection: close\r\n" if self.say_close else b""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(number), close, number))
        await writer.drain()
        if self.hang_up:
            writer.close()
            await writer.wait_closed()
            self.closed.set()
        else:
            self.open_writers.append(writer)  # kept open, but it will never read another request


@asynccontextmanager
async def gateway_to(upstream: OneRequestPerConnection) -> AsyncIterator[str]:
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # A short header timeout: a request sent on a connection nobody reads any more must fail fast, not hang.
    config = load_config(gateway={"storaged_url": f"http://127.0.0.1:{port}", "timeouts": {"storage": 2}})
    async with server:
        try:
            async with run_server(create_app(config)) as url:
                yield url
        finally:
            for writer in upstream.open_writers:
                writer.close()


async def test_a_connection_the_upstream_closed_while_idle_is_not_reused() -> None:
    upstream = OneRequestPerConnection(say_close=False, hang_up=True)
    async with gateway_to(upstream) as url, httpx.AsyncClient(base_url=url, timeout=STUCK_SECS) as c:
        first = await c.post("/v1/storage/objects/a", content=b"one")
        await asyncio.wait_for(upstream.closed.wait(), STUCK_SECS)
        await asyncio.sleep(0.1)  # the gateway's loop (this one) takes in the upstream's FIN
        second = await c.post("/v1/storage/objects/a", content=b"two")
    assert (first.status_code, first.content) == (200, b"1")
    assert (second.status_code, second.content) == (200, b"2")
    assert upstream.connections == 2


async def test_connection_close_from_the_upstream_is_honoured_even_if_it_keeps_the_socket_open() -> None:
    upstream = OneRequestPerConnection(say_close=True, hang_up=False)
    async with gateway_to(upstream) as url, httpx.AsyncClient(base_url=url, timeout=STUCK_SECS) as c:
        answers = [await c.post("/v1/storage/objects/a", content=b"x") for _ in range(3)]
    assert [(a.status_code, a.content) for a in answers] == [(200, b"1"), (200, b"2"), (200, b"3")]
    assert upstream.connections == 3


async def test_a_kept_alive_connection_is_reused() -> None:
    # The other side of the rule: a healthy keep-alive upstream sees one connection for sequential requests.
    connections = 0

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                (int(x.split(b":")[1]) for x in head.lower().split(b"\r\n") if x.startswith(b"content-length:")), 0
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(keep_alive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = load_config(gateway={"storaged_url": f"http://127.0.0.1:{port}"})
    async with (
        server,
        run_server(create_app(config)) as url,
        httpx.AsyncClient(base_url=url, timeout=STUCK_SECS) as c,
    ):
        statuses = [(await c.post("/v1/storage/objects/a", content=b"x")).status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert connections == 1
