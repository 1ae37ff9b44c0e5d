"""chatd under test: in process (httpx over ASGI) or on a real loopback port (where disconnects must be real)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from services.chatd.app import create_app
from shared.config import load_config
from tests.support.servers import app_client, run_server

NO_KEY_FILES = {
    f"{name}_key_file": "/nonexistent/lakehouse-test.env" for name in ("ollama_cloud", "openrouter", "opencode", "kimi")
}
KEY_VARS = ("OLLAMA_CLOUD_KEY", "OPENROUTER_API_KEY", "OPENCODE_API_KEY", "KIMI_API_KEY")
HI = [{"role": "user", "content": "hello there"}]


# The ledger stays in the test's own directory: no test ships it to a storaged it did not start.
UNSHIPPED = {"storaged_url": "", "catalogd_url": ""}


def chatd_config(**chatd: Any) -> Any:
    models = chatd.pop("models", {})
    return load_config(chatd={**NO_KEY_FILES, **UNSHIPPED, **chatd}, models=models)


@asynccontextmanager
async def chatd(**chatd_config_: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(chatd_config(**chatd_config_))) as client:
        yield client


@asynccontextmanager
async def chatd_server(**chatd_config_: Any) -> AsyncIterator[str]:
    async with run_server(create_app(chatd_config(**chatd_config_))) as url:
        yield url


def sse_events(text: str) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON-decoded ("[DONE]" kept as the string)."""
    events: list[Any] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            payload = line[6:]
            events.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return events


def ndjson_lines(text: str) -> list[Any]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


async def eventually(condition: Callable[[], bool], *, within_secs: float = 10.0) -> None:
    """Wait until `condition()` holds (a test of behaviour, not of speed: the bound only stops a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_secs
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition did not become true")
        await asyncio.sleep(0.01)
