from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from shared.config import ConfigError, load_config
from shared.web.app import service_app
from tests.support.servers import asgi_client, run_server


def make_app(token: str = "", allowed_ips: list[str] | None = None) -> Starlette:
    async def secret(request: Request) -> PlainTextResponse:
        return PlainTextResponse("inside")

    config = load_config(auth={"token": token, "allowed_ips": allowed_ips or []})
    return service_app("testd", config, [Route("/v1/thing", secret)])


async def status_of(app: Starlette, peer: str, headers: dict[str, str] | None = None, path: str = "/v1/thing") -> int:
    async with asgi_client(app, client=(peer, 40000)) as client:
        return (await client.get(path, headers=headers)).status_code


BEARER = {"Authorization": "Bearer t0ken"}


async def test_no_token_no_allowlist_is_a_no_op() -> None:
    app = make_app()
    assert await status_of(app, "203.0.113.9") == 200
    assert await status_of(app, "2001:db8::1") == 200


async def test_token_only() -> None:
    app = make_app(token="t0ken")
    async with asgi_client(app) as client:
        response = await client.get("/v1/thing")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert "t0ken" not in response.text
    assert await status_of(app, "127.0.0.1", {"Authorization": "Bearer wrong"}) == 401
    assert await status_of(app, "127.0.0.1", {"Authorization": "t0ken"}) == 401
    assert await status_of(app, "127.0.0.1", BEARER) == 200
    assert await status_of(app, "2001:db8::1", BEARER) == 200


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("bearer t0ken", 200),
        ("BEARER t0ken", 200),
        ("BeArEr  t0ken", 200),
        ("Basic t0ken", 401),
        ("Bearer T0KEN", 401),
        ("Bearert0ken", 401),
        ("Bearer", 401),
    ],
)
async def test_the_bearer_scheme_is_case_insensitive_the_token_is_not(value: str, status: int) -> None:
    assert await status_of(make_app(token="t0ken"), "127.0.0.1", {"Authorization": value}) == status


async def test_health_is_exempt_from_the_token_and_says_little() -> None:
    async with asgi_client(make_app(token="t0ken")) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "testd"}


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("10.1.2.3", True),
        ("192.0.2.7", True),
        ("192.0.2.8", False),
        ("172.16.0.1", False),
        ("2001:db8::42", True),
        ("2001:db9::1", False),
        ("::1", True),
        ("::ffff:10.9.9.9", True),  # an IPv4 peer seen on a dual-stack socket
    ],
)
async def test_allowlist_only(peer: str, allowed: bool) -> None:
    app = make_app(allowed_ips=["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"])
    response_status = await status_of(app, peer)
    assert response_status == (200 if allowed else 403)


async def test_allowlist_applies_to_health_too() -> None:
    assert await status_of(make_app(allowed_ips=["10.0.0.0/8"]), "192.0.2.1", path="/health") == 403


async def test_token_and_allowlist_both_apply() -> None:
    app = make_app(token="t0ken", allowed_ips=["127.0.0.1", "::1"])
    assert await status_of(app, "127.0.0.1", BEARER) == 200
    assert await status_of(app, "::1", BEARER) == 200
    assert await status_of(app, "127.0.0.1") == 401
    assert await status_of(app, "192.0.2.1", BEARER) == 403


def test_malformed_allowed_ips_entry_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"auth\.allowed_ips.*got \"10\.0\.0\.0/33\""):
        load_config(auth={"allowed_ips": ["10.0.0.0/33"]})


def ws_app(token: str) -> Starlette:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("inside")
        await websocket.close()

    config = load_config(auth={"token": token})
    return service_app("testd", config, [WebSocketRoute("/v1/ws", ws)])


async def handshake(url: str, headers: str = "") -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            "GET /v1/ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + headers + "\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split()[1])
    lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    body = await asyncio.wait_for(reader.readexactly(int(lengths[0].split(b":")[1])), 10) if lengths else b""
    writer.close()
    return status, body


async def test_websocket_handshake_needs_the_token_and_is_refused_with_json() -> None:
    async with run_server(ws_app("t0ken")) as url:
        status, body = await handshake(url)
        assert status == 401
        assert json.loads(body)["error"]["code"] == "unauthorized"
        status, _ = await handshake(url, "Authorization: Bearer wrong\r\n")
        assert status == 401
        status, _ = await handshake(url, "Authorization: Bearer t0ken\r\n")
        assert status == 101


async def test_websocket_refusal_without_the_denial_extension_is_a_policy_close() -> None:
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    app = ws_app("t0ken")
    scope = {"type": "websocket", "path": "/v1/ws", "headers": [], "client": ("127.0.0.1", 1), "extensions": {}}
    await app(scope, receive, send)
    assert sent[0]["type"] == "websocket.close"
    assert sent[0]["code"] == 1008


@pytest.mark.parametrize(
    ("bind", "peer", "status"),
    [
        ("127.0.0.1:3220", "127.0.0.1", 200),  # loopback-bound: only this box can reach it
        ("127.0.0.1:3220", "::1", 200),
        ("127.0.0.1:3220", "192.0.2.1", 403),
        ("0.0.0.0:3220", "127.0.0.1", 403),  # reachable from outside: the allow-list is the rule
        ("0.0.0.0:3220", "10.1.2.3", 200),
    ],
)
async def test_a_loopback_bound_service_accepts_loopback_peers_whatever_the_allow_list(
    bind: str, peer: str, status: int
) -> None:
    config = load_config(chatd={"bind": bind}, auth={"allowed_ips": ["10.0.0.0/8"]})
    app = service_app("chatd", config, [])
    assert await status_of(app, peer, path="/health") == status
