"""The gateway: one port in front of every /v1 family."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.console import PUBLIC_PATHS, PUBLIC_PREFIXES, create_console_routes
from gateway.health import PROBE_TIMEOUT_SECS, probe_all
from gateway.proxy import FAMILY_PREFIX, Family, FamilyProxy
from shared.app import service_app
from shared.config import LakehouseConfig
from shared.topology import UPSTREAMS
from shared.upstream import UpstreamPool

# chatd answers within its own timeout_secs; the gateway waits that long plus this margin.
CHAT_TIMEOUT_MARGIN_SECS = 10.0


def family_timeout(config: LakehouseConfig, family: str) -> float:
    configured: float = getattr(config.gateway.timeouts, family)
    if family == "chat" and not configured:
        return config.chatd.call_timeout_secs + CHAT_TIMEOUT_MARGIN_SECS
    return configured


def upstream_urls(config: LakehouseConfig) -> dict[str, str]:
    """service name -> upstream URL, for every family with a URL configured."""
    urls = {s.name: getattr(config.gateway, s.gateway_url_key) for s in UPSTREAMS}
    return {name: url for name, url in urls.items() if url}


def build_families(config: LakehouseConfig) -> dict[str, Family]:
    urls = upstream_urls(config)
    families = {}
    for service in UPSTREAMS:
        if service.name in urls:
            name = service.family.removeprefix(FAMILY_PREFIX)
            families[name] = Family(name, service.name, UpstreamPool(urls[service.name]), family_timeout(config, name))
    return families


def create_app(config: LakehouseConfig) -> Starlette:
    families = build_families(config)
    probes = upstream_urls(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_SECS, trust_env=False) as client:
            app.state.probe_client = client
            try:
                yield
            finally:
                for family in families.values():
                    await family.pool.aclose()

    async def v1_health(request: Request) -> JSONResponse:
        report = await probe_all(request.app.state.probe_client, probes)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    return service_app(
        "gateway",
        config,
        [
            Route("/v1/health", v1_health, methods=["GET"]),
            *create_console_routes(auth_required=bool(config.auth.token.get_secret_value()), probes=probes),
        ],
        lifespan=lifespan,
        public_paths=PUBLIC_PATHS,
        public_prefixes=PUBLIC_PREFIXES,
        front=[Middleware(FamilyProxy, families=families)],
    )
