from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.config import load_config
from shared.web.app import service_app
from shared.web.body import read_json
from tests.support.servers import asgi_client


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    size: int


async def echo(request: Request) -> JSONResponse:
    thing = await read_json(request, Thing, max_bytes=64)
    return JSONResponse(thing.model_dump())


def client() -> httpx.AsyncClient:
    return asgi_client(service_app("test", load_config(), [Route("/thing", echo, methods=["POST"])]))


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"])
async def test_json_content_types_are_accepted(content_type: str) -> None:
    async with client() as c:
        response = await c.post("/thing", content=b'{"name": "a", "size": 1}', headers={"content-type": content_type})
    assert response.status_code == 200
    assert response.json() == {"name": "a", "size": 1}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_other_content_types_are_refused_with_415(content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with client() as c:
        response = await c.post("/thing", content=b'{"name": "a", "size": 1}', headers=headers)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_body_over_the_cap_is_413_by_declared_length() -> None:
    async with client() as c:
        response = await c.post("/thing", json={"name": "x" * 100, "size": 1})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_body_over_the_cap_is_413_while_streaming() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"          "

    async with client() as c:
        response = await c.post("/thing", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_invalid_body_names_the_field() -> None:
    async with client() as c:
        response = await c.post("/thing", json={"name": "a", "size": "big", "extra": 1})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "size:" in message
    assert "extra: unknown field" in message
