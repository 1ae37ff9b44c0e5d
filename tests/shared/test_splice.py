"""The servers' splice extension (shared/splice.py), through a real server: an app moves a body from another socket
to its client. The whole body arrives intact; a source that ends early truncates the response and tells the app;
a client that goes away stops the move without an error; a file is sent from its offset."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from shared.server.splice import SPLICE, SourceFailed
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


class FileApp:
    """GET /file?offset: BODY's file from `offset` on, by splice; the file is shorter than the response says when
    the path is /short-file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.outcome = Outcome()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        offset = int(scope["query_string"] or 0)
        length = len(BODY) - offset + (1000 if scope["path"] == "/short-file" else 0)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % length)]})
        fd = os.open(self.path, os.O_RDONLY)
        try:
            self.outcome.taken = await scope["extensions"][SPLICE]["splice"](fd, length, offset)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except SourceFailed as exc:
            self.outcome.error = exc
        finally:
            os.close(fd)
            self.outcome.done.set()


async def test_a_file_is_sent_from_its_offset(tmp_path: Path) -> None:
    (tmp_path / "body").write_bytes(BODY)
    app = FileApp(str(tmp_path / "body"))
    async with run_server(app) as url, httpx.AsyncClient(timeout=30) as client:
        whole = await client.get(url + "/file")
        rest = await client.get(url + "/file?12345")
    assert whole.content == BODY
    assert rest.content == BODY[12345:]


async def test_a_file_shorter_than_promised_truncates_the_response(tmp_path: Path) -> None:
    (tmp_path / "body").write_bytes(BODY)
    app = FileApp(str(tmp_path / "body"))
    async with run_server(app) as url, httpx.AsyncClient(timeout=30) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url + "/short-file")
    assert isinstance(app.outcome.error, SourceFailed)
    assert app.outcome.taken is None
