"""Forwarding rules checked on the wire where the client, not httpx, decides every byte."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from gateway.app import create_app
from gateway.proxy import REPLAY_MAX_BYTES
from shared.config import load_config
from tests.support.fixtures import Stack
from tests.support.servers import run_server

# Deadlock guard only (a broken gateway would otherwise hang the test); nothing here measures time.
STUCK_SECS = 10


async def raw_exchange(url: str, request: bytes) -> bytes:
    """Exactly these bytes on the wire, the whole raw response back (the request must ask to close)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    raw = await asyncio.wait_for(reader.read(), STUCK_SECS)
    writer.close()
    return raw


def echoed_headers(raw: bytes) -> list[tuple[str, str]]:
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 "), head
    return [(name, value) for name, value in json.loads(body)["headers"]]


# Each of these is hop-by-hop by definition, whether or not the client's Connection header names it.
FIXED_HOP_BY_HOP = [
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Connection", "keep-alive"),
    ("Proxy-Authenticate", "Basic"),
    ("Proxy-Authorization", "Basic eDp5"),
    ("TE", "trailers"),
    ("Trailer", "x-checksum"),
    ("Upgrade", "h2c"),
]


@pytest.mark.parametrize(("name", "value"), FIXED_HOP_BY_HOP, ids=[name for name, _ in FIXED_HOP_BY_HOP])
async def test_fixed_hop_by_hop_request_headers_are_dropped_unnamed(stack: Stack, name: str, value: str) -> None:
    # No Connection header at all: only the fixed list can drop it.
    request = f"GET /v1/sql/echo HTTP/1.1\r\nHost: gw\r\n{name}: {value}\r\nX-Kept: yes\r\n\r\n".encode()
    host, port = stack.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), STUCK_SECS)
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
    )
    body = await asyncio.wait_for(reader.readexactly(length), STUCK_SECS)
    writer.close()
    names = [n for n, _ in echoed_headers(head + body)]
    assert name.lower() not in names
    assert "connection" not in names
    assert "x-kept" in names


async def test_connection_tokens_are_comma_separated_with_or_without_spaces(stack: Stack) -> None:
    raw = await raw_exchange(
        stack.url,
        b"GET /v1/sql/echo HTTP/1.1\r\nHost: gw\r\nConnection: X-One,x-TWO ,\tX-Three\r\nConnection: close\r\n"
        b"X-One: 1\r\nX-Two: 2\r\nX-Three: 3\r\nX-Four: 4\r\n\r\n",
    )
    names = [n for n, _ in echoed_headers(raw)]
    assert not {"x-one", "x-two", "x-three", "connection"} & set(names)
    assert "x-four" in names


async def test_no_host_from_the_client_means_no_x_forwarded_host(stack: Stack) -> None:
    # HTTP/1.0 needs no Host header; the gateway must not invent one for X-Forwarded-Host.
    raw = await raw_exchange(stack.url, b"GET /v1/sql/echo HTTP/1.0\r\n\r\n")
    headers = dict(echoed_headers(raw))
    assert "x-forwarded-host" not in headers
    assert headers["x-forwarded-proto"] == "http"
    assert headers["host"].startswith("127.0.0.1:")  # the upstream's own authority


async def test_client_x_forwarded_proto_and_host_are_replaced_not_passed_on(stack: Stack) -> None:
    raw = await raw_exchange(
        stack.url,
        b"GET /v1/sql/echo HTTP/1.1\r\nHost: lakehouse.example\r\n"
        b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n"
        b"X-Forwarded-Proto: gopher\r\nX-Forwarded-For: 198.51.100.7\r\nConnection: close\r\n\r\n",
    )
    headers = echoed_headers(raw)
    assert [v for n, v in headers if n == "x-forwarded-proto"] == ["http"]
    assert [v for n, v in headers if n == "x-forwarded-host"] == ["lakehouse.example"]
    assert [v for n, v in headers if n == "x-forwarded-for"] == ["198.51.100.7, 127.0.0.1"]


async def test_repeated_x_forwarded_for_becomes_one_list_ending_with_the_peer(stack: Stack) -> None:
    raw = await raw_exchange(
        stack.url,
        b"GET /v1/sql/echo HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: 198.51.100.7\r\n"
        b"X-Forwarded-For: 203.0.113.1, 203.0.113.2\r\nConnection: close\r\n\r\n",
    )
    forwarded_for = [v for n, v in echoed_headers(raw) if n == "x-forwarded-for"]
    assert forwarded_for == ["198.51.100.7, 203.0.113.1, 203.0.113.2, 127.0.0.1"]


async def test_chunked_upstream_dying_mid_body_aborts_the_client() -> None:
    # A chunked response has no length to check against: only the gateway can tell the client it was cut short.
    async def dies_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + b"x" * 100 + b"\r\n")
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(dies_mid_body, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    config = load_config(gateway={"observerd_url": f"http://127.0.0.1:{port}"})
    async with upstream, run_server(create_app(config)) as url:
        with capture_logs() as logs:
            raw = await raw_exchange(url, b"GET /v1/observer/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        async with httpx.AsyncClient(timeout=STUCK_SECS) as c:
            with pytest.raises(httpx.RemoteProtocolError):
                await c.get(url + "/v1/observer/x")
    # The operator learns why the client got a cut-off body.
    assert {
        "event": "upstream failed mid-response",
        "log_level": "warning",
        "family": "observer",
        "error": "upstream closed the connection before the response was complete",
    } in logs
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding: chunked" in head.lower()
    assert b"x" * 100 in body
    # The connection ended without the last chunk: the client knows the body is incomplete.
    assert not body.endswith(b"0\r\n\r\n")


class FirstPieceUpstream:
    """A raw upstream that answers only after the whole body, and says when the first body bytes arrived."""

    def __init__(self) -> None:
        self.first_piece = asyncio.Event()
        self.received: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        length = next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length:")), None)
        body = b""
        if length is None:  # chunked: read until the terminating chunk
            while not body.endswith(b"0\r\n\r\n"):
                body += await reader.read(65536)
                self.first_piece.set()
        else:
            while len(body) < length:
                body += await reader.read(65536)
                self.first_piece.set()
        self.received.append(body)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
async def test_upload_reaches_the_upstream_before_the_client_has_sent_it_all(sized: bool) -> None:
    upstream = FirstPieceUpstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # Past the size the gateway buffers to be able to replay a request on a fresh connection.
    piece = b"p" * (REPLAY_MAX_BYTES // 2 + 1)

    async def body() -> AsyncIterator[bytes]:
        yield piece
        # The rest is sent only once the upstream has seen the first piece: a gateway that reads the whole
        # body before forwarding never gets it.
        await asyncio.wait_for(upstream.first_piece.wait(), STUCK_SECS)
        yield piece

    headers: dict[str, Any] = {"Content-Length": str(2 * len(piece))} if sized else {}
    config = load_config(gateway={"ingestd_url": f"http://127.0.0.1:{port}"})
    async with server, run_server(create_app(config)) as url, httpx.AsyncClient(timeout=STUCK_SECS) as c:
        response = await c.put(url + "/v1/ingest/upload", content=body(), headers=headers)
    assert response.status_code == 200
    (received,) = upstream.received
    assert (received if sized else dechunk(received)) == piece * 2


def dechunk(framed: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, framed = framed.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert framed == b"\r\n"
            return out
        out += framed[:size]
        assert framed[size : size + 2] == b"\r\n"
        framed = framed[size + 2 :]
