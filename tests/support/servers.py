"""Test harness: real servers on loopback port 0, and an ASGI client for in-process apps."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import uvicorn

from scripts.net import free_port, wait_for_http
from shared.server.runner import uvicorn_config

__all__ = [
    "app_client",
    "asgi_client",
    "free_port",
    "run_server",
    "run_servers",
    "serve_in_thread",
    "wait_for_http",
]


@asynccontextmanager
async def run_servers(
    apps: list[Any], *, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[list[str]]:
    """Serve each app with uvicorn on a free port (or `port`, for one app) for the duration of the block; yields
    their base URLs.

    Started and stopped together: uvicorn notices `should_exit` on its 0.1 s tick, so one at a time adds up.
    """
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
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
async def run_server(app: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free port (or `port`) for the duration of the block; yields its base URL."""
    async with run_servers([app], host=host, port=port, **options) as (url,):
        yield url


def asgi_client(app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://testserver")


@asynccontextmanager
async def app_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client for `app` with its lifespan running (ASGITransport does not run it)."""
    async with app.router.lifespan_context(app), asgi_client(app) as client:
        yield client


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """`run_server` on its own event loop in a thread, for tests that drive a blocking client (boto3, DuckDB)."""
    started = threading.Event()
    url: list[str] = []
    failure: list[BaseException] = []
    loop_and_stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        loop_and_stop.append((asyncio.get_running_loop(), stop))
        async with run_server(app, host=host, port=port) as base:
            url.append(base)
            started.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=run, name="test-server", daemon=True)
    thread.start()
    started.wait()
    if failure:
        raise failure[0]
    try:
        yield url[0]
    finally:
        loop, stop = loop_and_stop[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        if failure:
            raise failure[0]
