"""The allow-list with peers that are not a plain IP address: they are refused, never waved through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shared.config import load_config
from shared.server.runner import uvicorn_config
from shared.web.app import service_app
from shared.web.auth import AuthMiddleware
from tests.support.servers import asgi_client

FORBIDDEN = {"error": {"code": "forbidden", "message": "your address is not in auth.allowed_ips"}}


async def inside(request: Request) -> PlainTextResponse:
    return PlainTextResponse("inside")


def guarded(allowed_ips: list[str], token: str = "") -> Starlette:
    config = load_config(auth={"token": token, "allowed_ips": allowed_ips})
    return service_app("testd", config, [Route("/v1/thing", inside)])


@asynccontextmanager
async def on_unix_socket(app: Starlette, path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """`app` served by uvicorn on a Unix socket, where a request has no peer address at all."""
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1:0", uds=str(path)))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server exited during startup")
            await asyncio.sleep(0.01)
        transport = httpx.AsyncHTTPTransport(uds=str(path))
        async with httpx.AsyncClient(transport=transport, base_url="http://local") as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def test_a_peer_without_an_address_is_refused(tmp_path: Path) -> None:
    async with on_unix_socket(guarded(["0.0.0.0/0", "::/0"]), tmp_path / "s.sock") as client:
        response = await client.get("/v1/thing")
    assert response.status_code == 403
    assert response.json() == FORBIDDEN


@pytest.mark.parametrize("peer", ["testclient", "", "10.0.0.1%eth0", "not an address"])
async def test_a_peer_that_is_not_an_ip_address_is_refused(peer: str) -> None:
    async with asgi_client(guarded(["0.0.0.0/0", "::/0"]), client=(peer, 40000)) as client:
        response = await client.get("/v1/thing")
    assert response.status_code == 403
    assert response.json() == FORBIDDEN


async def test_an_allowlist_entry_with_host_bits_set_means_its_network() -> None:
    # Config accepts "10.9.9.9/8" (as Go's net.ParseCIDR does); the middleware must read it the same way.
    app = guarded(["10.9.9.9/8"])
    async with asgi_client(app, client=("10.200.0.1", 40000)) as client:
        assert (await client.get("/v1/thing")).status_code == 200
    async with asgi_client(app, client=("11.0.0.1", 40000)) as client:
        assert (await client.get("/v1/thing")).status_code == 403


async def test_the_middleware_alone_guards_nothing() -> None:
    # Off unless configured: a bare AuthMiddleware (no token, no allow-list) lets everything through.
    app = Starlette(routes=[Route("/v1/thing", inside)], middleware=[Middleware(AuthMiddleware)])
    async with asgi_client(app, client=("203.0.113.9", 40000)) as client:
        response = await client.get("/v1/thing")
    assert (response.status_code, response.text) == (200, "inside")
