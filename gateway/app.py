"""The gateway: one port in front of every /v1 family."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Scope

from gateway.console import PUBLIC_PATHS, PUBLIC_PREFIXES, create_console_routes
from gateway.health import Prober
from gateway.keys import key_routes, usage_of_chat
from gateway.proxy import Family, FamilyProxy
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.keys.gate import WRONG, KeyGate
from shared.keys.meters import METER_FILE, LazyMeters
from shared.keys.scopes import scope_table
from shared.keys.sealing import sealer_of
from shared.keys.store import running_cache
from shared.registry import FAMILY_PREFIX, upstreams
from shared.s3.errors import S3Error
from shared.s3.requests import is_s3_request
from shared.telemetry.metrics import Metrics
from shared.upstream import UpstreamPool
from shared.web.app import service_app
from shared.web.iceberg_errors import IcebergErrorShape

# chatd answers within its own timeout_secs; the gateway waits that long plus this margin.
CHAT_TIMEOUT_MARGIN_SECS = 10.0


def family_timeout(config: LakehouseConfig, family: str) -> float:
    configured = config.gateway.timeout(family)
    if family == "chat" and not configured:
        derived: float = config.chatd.call_timeout_secs + CHAT_TIMEOUT_MARGIN_SECS
        return derived
    return configured


def upstream_urls(config: LakehouseConfig) -> dict[str, str]:
    """service name -> upstream URL, for every family with a URL configured."""
    urls = {s.name: config.gateway.upstream_url(s.name) for s in upstreams()}
    return {name: url for name, url in urls.items() if url}


@dataclass(frozen=True, slots=True)
class Routes:
    """What the proxy forwards: families by the segment after /v1/, exact paths by the whole path."""

    families: dict[str, Family]
    exact: dict[str, Family]
    s3: Family | None = None  # where S3 requests go (the service whose row says it serves S3), when configured

    def pools(self) -> list[UpstreamPool]:
        every = (*self.families.values(), *self.exact.values(), *([self.s3] if self.s3 else []))
        return list({id(f.pool): f.pool for f in every}.values())


def build_routes(config: LakehouseConfig) -> Routes:
    urls = upstream_urls(config)
    routes = Routes({}, {})
    s3: Family | None = None
    for service in upstreams():
        if service.name not in urls:
            continue
        # One pool per service: its prefix family and its exact paths share the upstream's connections.
        pool = UpstreamPool(urls[service.name], max_connections=config.gateway.upstream_max_connections)
        name = service.timeout_key
        timeout = family_timeout(config, name)
        routes.families[name] = Family(name, service.name, pool, timeout)
        for family in service.more_families:
            segment = family.removeprefix(FAMILY_PREFIX)
            routes.families[segment] = Family(segment, service.name, pool, timeout)
        for path in service.exact_paths:
            routes.exact[path] = Family(path.removeprefix(FAMILY_PREFIX), service.name, pool, timeout)
        if service.serves_s3:
            s3 = Family("s3", service.name, pool, timeout)
    return Routes(routes.families, routes.exact, s3)


def create_app(config: LakehouseConfig) -> Starlette:
    routes = build_routes(config)
    probes = upstream_urls(config)
    token = config.auth.token.get_secret_value()
    storaged_url = config.gateway.upstream_url("storaged")
    scopes = scope_table()
    gate: dict[str, KeyGate] = {}
    meters = LazyMeters(Path(config.gateway.state_dir) / METER_FILE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as resources:
            for pool in routes.pools():
                await resources.enter_async_context(pool)
            app.state.prober = await resources.enter_async_context(Prober(probes))
            if token and storaged_url:
                cache = await resources.enter_async_context(running_cache(storaged_url, token))
                gate["gate"] = KeyGate(
                    cache,
                    scopes,
                    token,
                    meters.get,
                    sealer=sealer_of(config.auth.master_key.get_secret_value()),
                    region=config.s3_api.region,
                )
                resources.callback(meters.close)
            yield

    def admit_key(scope: Scope, presented: bytes) -> LakehouseError | None:
        found = gate.get("gate")
        return found.admit(scope, presented) if found else LakehouseError("unauthorized", WRONG)

    def admit_signed(scope: Scope) -> S3Error | None:
        found = gate.get("gate")
        return found.admit_signed(scope) if found else None  # keys off: storaged's own check answers

    async def v1_health(request: Request) -> JSONResponse:
        report = await request.app.state.prober.probe_all()
        # Whether S3 clients can sign here (`lakehouse status` says so); the key itself is never shown.
        report["s3_api"] = {"enabled": config.s3_api_on, "region": config.s3_api.region}
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    return service_app(
        "gateway",
        config,
        [
            Route("/v1/health", v1_health, methods=["GET"]),
            *create_console_routes(auth_required=bool(config.auth.token.get_secret_value())),
            *key_routes(lambda: gate.get("gate"), scopes, usage_of_chat(config)),
        ],
        lifespan=lifespan,
        front=[
            Middleware(
                FamilyProxy, families=routes.families, exact=routes.exact, s3=routes.s3, admit_signed=admit_signed
            )
        ],
        metrics=Metrics("gateway", family=True),
        public_paths=PUBLIC_PATHS,
        public_prefixes=PUBLIC_PREFIXES,
        signed=is_s3_request,
        # The gateway's own refusals (401, 403, catalogd down) reach Iceberg clients in the catalog's error shape.
        outer=[Middleware(IcebergErrorShape)],
        keys=admit_key,
    )
