"""The console's pages over HTTP: what a browser without JavaScript gets, and what needs no token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from shared.config import load_config
from shared.registry import upstreams
from tests.support.fakes.echo import EchoUpstream
from tests.support.servers import app_client, run_servers

TOKEN = "t0ken-for-console"


async def gateway_client(**auth: object) -> AsyncIterator[httpx.AsyncClient]:
    echoes = [EchoUpstream(name=s.name) for s in upstreams()]
    async with run_servers(echoes) as urls:
        gateway = {s.gateway_url_key: url for s, url in zip(upstreams(), urls, strict=True)}
        async with app_client(create_app(load_config(gateway=gateway, auth=auth))) as client:
            yield client


@pytest.fixture
async def open_gateway() -> AsyncIterator[httpx.AsyncClient]:
    async for client in gateway_client():
        yield client


@pytest.fixture
async def guarded_gateway() -> AsyncIterator[httpx.AsyncClient]:
    async for client in gateway_client(token=TOKEN):
        yield client


async def test_overview_is_rendered_on_the_server(open_gateway: httpx.AsyncClient) -> None:
    response = await open_gateway.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for service in upstreams():
        assert f'<th scope="row">{service.name}</th><td class="status-ok">ok</td>' in page
    assert '<a href="/" aria-current="page">Overview</a>' in page
    assert '<span id="health-summary" class="summary">ok</span>' in page


@pytest.mark.parametrize("page", ["datasets", "chat", "vectors", "keys"])
async def test_each_page_has_its_shell(open_gateway: httpx.AsyncClient, page: str) -> None:
    response = await open_gateway.get(f"/console/{page}")
    assert response.status_code == 200
    assert f'data-page="{page}"' in response.text
    assert f'<a href="/console/{page}" aria-current="page">' in response.text


async def test_unknown_page_is_404_html(open_gateway: httpx.AsyncClient) -> None:
    response = await open_gateway.get("/console/nope")
    assert response.status_code == 404
    assert "No such console page." in response.text


async def test_console_root_redirects_to_the_overview(open_gateway: httpx.AsyncClient) -> None:
    response = await open_gateway.get("/console/")
    assert response.status_code == 308
    assert response.headers["location"] == "/"


async def test_assets_are_served(open_gateway: httpx.AsyncClient) -> None:
    script = await open_gateway.get("/console/static/console.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert (await open_gateway.get("/console/static/console.css")).status_code == 200


async def test_with_a_token_pages_load_but_show_no_stack_data(guarded_gateway: httpx.AsyncClient) -> None:
    response = await guarded_gateway.get("/")
    assert response.status_code == 200
    assert 'data-auth="required"' in response.text
    assert "Sign in with the stack token" in response.text
    assert not any(f'<th scope="row">{s.name}</th>' in response.text for s in upstreams())
    assert (await guarded_gateway.get("/console/chat")).status_code == 200
    assert (await guarded_gateway.get("/console/static/console.js")).status_code == 200


async def test_with_a_token_the_api_behind_the_console_still_needs_it(guarded_gateway: httpx.AsyncClient) -> None:
    assert (await guarded_gateway.get("/v1/health")).status_code == 401
    assert (await guarded_gateway.get("/v1/catalog/datasets")).status_code == 401
    # The token-free prefix cannot be used to reach the API behind it.
    sneaky = await guarded_gateway.get("/console/%2e%2e/v1/health")
    assert sneaky.status_code in (400, 401, 404)
    assert "services" not in sneaky.text
    authorized = await guarded_gateway.get("/v1/health", headers={"authorization": f"Bearer {TOKEN}"})
    assert authorized.status_code == 200
