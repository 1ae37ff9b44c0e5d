from __future__ import annotations

import asyncio
import json

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shared.config import load_config
from shared.web.app import service_app
from tests.support.servers import run_server


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def raw(url: str, head: bytes) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head + b"Connection: close\r\n\r\n")
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (b"GET /v1/thing HTTP/1.1\r\n", "none"),
        (b"GET /v1/thing HTTP/1.1\r\nHost: a\r\nHost: b\r\n", "2"),
        (b"GET /v1/thing HTTP/1.1\r\nHost: a\r\nhost: a\r\n", "2"),
    ],
)
async def test_http11_needs_exactly_one_host(head: bytes, found: str) -> None:
    app = service_app("testd", load_config(), [Route("/v1/thing", hello)])
    async with run_server(app) as url:
        status, body = await raw(url, head)
    assert status == 400
    assert json.loads(body)["error"] == {
        "code": "invalid_request",
        "message": f"an HTTP/1.1 request needs exactly one Host header, got {found}",
    }


@pytest.mark.parametrize(
    "head", [b"GET /v1/thing HTTP/1.1\r\nHost: a\r\n", b"GET /v1/thing HTTP/1.0\r\n"], ids=["one-host", "http10"]
)
async def test_one_host_or_http10_is_fine(head: bytes) -> None:
    app = service_app("testd", load_config(), [Route("/v1/thing", hello)])
    async with run_server(app) as url:
        assert await raw(url, head) == (200, b"hello")
