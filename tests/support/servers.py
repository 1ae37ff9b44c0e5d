"""Test harness: real servers on loopback port 0, and an ASGI client for in-process apps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn

from scripts.net import free_port, wait_for_http
from shared.server.runner import uvicorn_config

__all__ = ["app_client", "asgi_client", "free_port", "run_server", "run_servers", "wait_for_http"]


@asynccontextmanager
async def run_servers(apps: list[Any], *, host: str = "127.0.0.1", **options: Any) -> AsyncIterator[list[str]]:
    """Serve each app with uvicorn on a free port for the duration of the block; yields their base URLs.

    Started and stopped together: uvicorn notices `should_exit` on its 0.1 s tick, so one at a time adds up.
    """
    bind = f"[{host}]:0" if ":" in host else f"{host}:0"
    servers = [uvicorn.Server(uvicorn_config(app, bind, **options)) for app in apps]
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        while not all(server.started for server in servers):
            for task in tasks:
                if task.done():
                    task.result()
                    raise RuntimeError("server exited during startup")
            await asyncio.sleep(0.01)
        ports = [server.servers[0].sockets[0].getsockname()[1] for server in servers]
        base = f"http://[{host}]" if ":" in host else f"http://{host}"
        yield [f"{base}:{port}" for port in ports]
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)


@asynccontextmanager
async def run_server(app: Any, *, host: str = "127.0.0.1", **options: Any) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free port for the duration of the block; yields its base URL."""
    async with run_servers([app], host=host, **options) as (url,):
        yield url


def asgi_client(app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://testserver")


@asynccontextmanager
async def app_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client for `app` with its lifespan running (ASGITransport does not run it)."""
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        yield client
