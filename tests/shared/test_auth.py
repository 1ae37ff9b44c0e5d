from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shared.app import service_app
from shared.config import ConfigError, load_config
from tests.support.servers import asgi_client


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
