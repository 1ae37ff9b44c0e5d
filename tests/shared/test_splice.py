"""The servers' splice extension (shared/splice.py), through a real server: an app moves a body from another socket
to its client. The whole body arrives intact; a source that ends early truncates the response and tells the app;
a client that goes away stops the move without an error."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field

import httpx
import pytest

from shared.splice import SPLICE, SourceFailed
from shared.types import Receive, Scope, Send
from tests.support.servers import run_server

BODY = os.urandom(12 << 20)
ENDLESS = 1 << 40


@dataclass
class Outcome:
    taken: int | None = None
    error: BaseException | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class SplicingApp:
    """GET /whole: all of BODY through splice; /short: the source closes half way; /endless: the source never
    stops sending (for a client that leaves)."""

    def __init__(self) -> None:
        self.outcome = Outcome()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        loop = asyncio.get_running_loop()
        source, feeder = socket.socketpair()
        source.setblocking(False)
        feeder.setblocking(False)
        fed = {"/whole": BODY, "/short": BODY[: len(BODY) // 2]}.get(scope["path"])

        async def feed() -> None:
            try:
                if fed is not None:
                    await loop.sock_sendall(feeder, fed)
                else:
                    while True:
                        await loop.sock_sendall(feeder, BODY)
            except OSError:
                pass  # the test is over
            finally:
                feeder.close()

        feeding = asyncio.create_task(feed())
        splice = scope["extensions"][SPLICE]["splice"]
        # Far more than any socket buffers hold, so a client that leaves is noticed before the end.
        length = ENDLESS if fed is None else len(BODY)
        headers = [(b"content-length", str(length).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            self.outcome.taken = await splice(source.fileno(), length)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except SourceFailed as exc:
            self.outcome.error = exc
        finally:
            source.close()
            feeding.cancel()
            self.outcome.done.set()


async def test_the_whole_body_arrives_intact() -> None:
    app = SplicingApp()
    async with run_server(app) as url, httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url + "/whole")
    assert response.status_code == 200
    assert response.content == BODY
    assert app.outcome.taken == len(BODY)


async def test_a_source_that_ends_early_truncates_the_response() -> None:
    app = SplicingApp()
    async with run_server(app) as url, httpx.AsyncClient(timeout=30) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url + "/short")
        await asyncio.wait_for(app.outcome.done.wait(), 10)
    assert isinstance(app.outcome.error, SourceFailed)


async def test_a_client_that_leaves_stops_the_move_without_an_error() -> None:
    app = SplicingApp()
    async with run_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
        await reader.readexactly(1 << 20)
        writer.transport.abort()  # a reset, not a polite close
        await asyncio.wait_for(app.outcome.done.wait(), 10)
    assert app.outcome.error is None
    assert app.outcome.taken is not None
    assert app.outcome.taken < ENDLESS
