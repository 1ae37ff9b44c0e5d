"""Auth in front of forwarding: a refused request never reaches an upstream, on any /v1/<family> path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from gateway.app import create_app
from shared.config import load_config
from shared.registry import upstreams
from tests.support.fakes.echo import EchoUpstream
from tests.support.servers import run_server, run_servers

TOKEN = "s3cr3t-gw-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Guarded:
    url: str
    upstreams: dict[str, EchoUpstream]

    def forwarded(self) -> list[str]:
        """Every path any upstream received, in family order."""
        return [path for upstream in self.upstreams.values() for path in upstream.forwarded]


@asynccontextmanager
async def guarded_gateway(*, token: str, allowed_ips: list[str]) -> AsyncIterator[Guarded]:
    """The gateway on a real port with auth configured, every family pointed at its own recording echo upstream."""
    echoes = {s.name: EchoUpstream(name=s.name) for s in upstreams()}
    async with run_servers(list(echoes.values())) as upstream_urls:
        gateway = {s.gateway_url_key: url for s, url in zip(upstreams(), upstream_urls, strict=True)}
        # Configured as a gateway open to the network: one bound to loopback also admits loopback peers (only this
        # box can reach it), which would let the test client past the allow-list.
        gateway["bind"] = "0.0.0.0:3110"
        config = load_config(auth={"token": token, "allowed_ips": allowed_ips}, gateway=gateway)
        async with run_server(create_app(config)) as url:
            yield Guarded(url, echoes)


async def test_token_guards_every_family_and_nothing_is_forwarded() -> None:
    async with (
        guarded_gateway(token=TOKEN, allowed_ips=["127.0.0.1", "::1"]) as gw,
        httpx.AsyncClient(base_url=gw.url) as c,
    ):
        for service in upstreams():
            missing = await c.post(service.family + "/x?y=1", content=b"body")
            wrong = await c.get(service.family + "/x", headers={"Authorization": "Bearer not-the-token"})
            bare_token = await c.get(service.family, headers={"Authorization": TOKEN})
            for refused in (missing, wrong, bare_token):
                assert refused.status_code == 401, service.family
                assert refused.json() == {
                    "error": {"code": "unauthorized", "message": "missing or wrong Authorization: Bearer token"}
                }
            assert gw.forwarded() == []
        for service in upstreams():
            allowed = await c.get(service.family + "/x", headers=BEARER)
            assert allowed.status_code == 200
            assert dict(allowed.json()["headers"])["authorization"] == f"Bearer {TOKEN}"
    assert gw.forwarded() == [s.family + "/x" for s in upstreams()]


async def test_allowlist_guards_forwarded_paths_even_with_the_token() -> None:
    async with (
        guarded_gateway(token=TOKEN, allowed_ips=["10.0.0.0/8"]) as gw,
        httpx.AsyncClient(base_url=gw.url) as c,
    ):
        with_token = await c.put("/v1/storage/objects/a", content=b"data", headers=BEARER)
        without = await c.get("/v1/storage/objects/a")
    for refused in (with_token, without):
        assert refused.status_code == 403
        assert refused.json() == {"error": {"code": "forbidden", "message": "your address is not in auth.allowed_ips"}}
    assert gw.forwarded() == []


async def test_allowlist_alone_guards_forwarded_paths() -> None:
    async with (
        guarded_gateway(token="", allowed_ips=["192.0.2.0/24"]) as gw,
        httpx.AsyncClient(base_url=gw.url) as c,
    ):
        response = await c.post("/v1/sql", json={"sql": "select 1"})
    assert response.status_code == 403
    assert gw.forwarded() == []


async def test_only_the_gateways_own_health_is_exempt() -> None:
    async with guarded_gateway(token=TOKEN, allowed_ips=[]) as gw, httpx.AsyncClient(base_url=gw.url) as c:
        # A family's own /health, and /v1/health that probes every upstream, are not for anonymous callers.
        for path in ("/v1/storage/health", "/v1/storage/x/health", "/v1/chat/health", "/v1/health"):
            assert (await c.get(path)).status_code == 401, path
        liveness = await c.get("/health")
    assert gw.forwarded() == []
    assert liveness.json() == {"status": "ok", "service": "gateway"}


async def test_the_token_never_shows_in_a_refusal() -> None:
    async with (
        guarded_gateway(token=TOKEN, allowed_ips=[]) as gw,
        httpx.AsyncClient(base_url=gw.url) as c,
    ):
        response = await c.get("/v1/storage/x", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert response.status_code == 401
    assert TOKEN not in response.text
    assert all(TOKEN not in value for value in response.headers.values())
