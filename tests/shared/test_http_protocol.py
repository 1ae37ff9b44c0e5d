"""The server limits, tested with raw sockets against a real uvicorn on port 0 (the wire is the point)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.config import load_config
from shared.server.http_protocol import ServerLimits
from shared.server.runner import server_limits
from shared.web.app import service_app
from tests.support.servers import free_port, run_server, wait_for_http

READ_TIMEOUT = 10.0


def echo_app() -> Starlette:
    async def headers(request: Request) -> JSONResponse:
        return JSONResponse({"fields": len(request.headers)})

    return service_app("testd", load_config(), [Route("/v1/headers", headers)])


@asynccontextmanager
async def serve(**limits: Any) -> AsyncIterator[tuple[str, int]]:
    async with run_server(echo_app(), limits=ServerLimits(**limits)) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines if line)
    headers = {k.lower(): v for k, v in headers.items()}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), READ_TIMEOUT)
    return int(status_line.split()[1]), headers, body


async def closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), READ_TIMEOUT) == b""
    except ConnectionResetError:
        return True


def error_code(body: bytes) -> str:
    code: str = json.loads(body)["error"]["code"]
    return code


def request_with(fields: int, *, value_size: int = 8) -> bytes:
    lines = [f"x-f{i}: {'v' * value_size}\r\n" for i in range(fields - 1)]
    return ("GET /v1/headers HTTP/1.1\r\nhost: t\r\n" + "".join(lines) + "\r\n").encode()


async def exchange(host: str, port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_response(reader)
    finally:
        writer.close()


async def test_header_count_at_the_limit_passes_and_one_more_is_431() -> None:
    async with serve(max_header_count=20) as (host, port):
        status, _, _ = await exchange(host, port, request_with(20))
        assert status == 200
        status, headers, body = await exchange(host, port, request_with(21))
        assert status == 431
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        assert error_code(body) == "headers_too_large"
        assert "more than 20 request header fields" in json.loads(body)["error"]["message"]


async def test_headers_over_the_byte_limit_are_431() -> None:
    async with serve(max_header_bytes=4096) as (host, port):
        status, _, _ = await exchange(host, port, request_with(10, value_size=300))
        assert status == 200
        status, _, body = await exchange(host, port, request_with(2, value_size=5000))
        assert status == 431
        assert error_code(body) == "headers_too_large"


async def test_a_header_that_never_ends_is_cut_off_at_the_limit() -> None:
    """A 64 MB header is refused once the limit is passed, not accumulated until it ends."""
    async with serve(max_header_bytes=64 << 10) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /v1/headers HTTP/1.1\r\nhost: t\r\nx-big: ")
        answered = asyncio.ensure_future(read_response(reader))
        sent = 0
        try:
            while sent < 64 << 20 and not answered.done():
                writer.write(b"a" * (16 << 10))
                await writer.drain()
                sent += 16 << 10
                await asyncio.sleep(0)
        except ConnectionError:
            pass
        status, _, body = await answered
        writer.close()
    assert (status, error_code(body)) == (431, "headers_too_large")
    assert sent < 16 << 20


async def test_malformed_http_gets_the_json_error_shape() -> None:
    async with serve() as (host, port):
        status, headers, body = await exchange(host, port, b"GET /v1/headers HTTP/1.1\r\nbad header\r\n\r\n")
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert error_code(body) == "invalid_request"
    assert json.loads(body)["error"]["message"].startswith("malformed HTTP request")


async def test_a_connection_that_never_sends_a_byte_gets_408_and_is_closed() -> None:
    async with serve(header_timeout_secs=0.3) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        status, _, body = await read_response(reader)
        assert (status, error_code(body)) == (408, "request_timeout")
        assert await closed(reader)
        writer.close()


async def test_slowloris_dribbling_is_cut_off_with_408() -> None:
    """Bytes that keep arriving do not extend the deadline: it counts from accept."""
    async with serve(header_timeout_secs=0.5) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        head = b"GET /v1/headers HTTP/1.1\r\nhost: t\r\n" + b"x-slow: " + b"s" * 200
        answered = asyncio.ensure_future(read_response(reader))
        for byte in head:
            if answered.done():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.02)
        status, _, body = await answered
        assert (status, error_code(body)) == (408, "request_timeout")
        assert await closed(reader)
        writer.close()


async def test_kept_alive_connection_idle_is_closed_and_a_slow_next_head_is_408() -> None:
    async with serve(header_timeout_secs=0.5, keepalive_timeout_secs=0.3) as (host, port):
        # Idle after a response: closed quietly by the keep-alive timeout.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request_with(1))
        assert (await read_response(reader))[0] == 200
        assert await closed(reader)
        writer.close()
        # A next head started but never finished: 408, counted from the previous response.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request_with(1))
        assert (await read_response(reader))[0] == 200
        writer.write(b"GET /v1/headers HTTP/1.1\r\n")
        status, _, body = await read_response(reader)
        assert (status, error_code(body)) == (408, "request_timeout")
        writer.close()


async def test_a_kept_alive_connection_serves_many_requests_within_the_timeouts() -> None:
    async with serve(header_timeout_secs=5, keepalive_timeout_secs=5) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        for _ in range(20):
            writer.write(request_with(3))
            assert (await read_response(reader))[0] == 200
        writer.close()


async def test_connections_beyond_the_cap_get_503_and_the_server_keeps_serving() -> None:
    async with serve(max_connections=4, header_timeout_secs=30) as (host, port):
        idle = [await asyncio.open_connection(host, port) for _ in range(4)]
        await asyncio.sleep(0.1)  # let the server register all four before the fifth arrives
        status, headers, body = await exchange(host, port, request_with(1))
        assert (status, error_code(body)) == (503, "service_unavailable")
        assert headers["connection"] == "close"
        for _, writer in idle:
            writer.close()
        # Once they are gone, new connections are served again.
        for _ in range(50):
            status, _, _ = await exchange(host, port, request_with(1))
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200


def test_services_get_the_gateway_limits_plus_forwarding_room() -> None:
    config = load_config(gateway={"max_header_count": 50, "max_header_bytes": 8192, "header_timeout_secs": 3})
    gateway, chatd = server_limits(config, "gateway"), server_limits(config, "chatd")
    assert (gateway.max_header_count, gateway.max_header_bytes, gateway.header_timeout_secs) == (50, 8192, 3)
    assert chatd.max_header_count > 50
    assert chatd.max_header_bytes > 8192
    assert chatd.header_timeout_secs == 3
    assert ServerLimits() == server_limits(load_config(), "gateway")


@pytest.mark.parametrize("service", ["gateway", "storaged"])
def test_every_server_the_runner_starts_applies_the_limits(service: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        f"LH_{service.upper()}__BIND": f"127.0.0.1:{port}",
        "LH_GATEWAY__MAX_HEADER_COUNT": "10",
        "LH_GATEWAY__WORKERS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "serve", service],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process)
        status, _, body = asyncio.run(exchange("127.0.0.1", port, request_with(40)))
        assert (status, error_code(body)) == (431, "headers_too_large")
    finally:
        process.terminate()
        process.wait(timeout=30)
