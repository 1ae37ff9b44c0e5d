"""The frame every service's Starlette app is built in: standard middleware, error bodies, /health."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Lifespan, Scope

from shared.config import LakehouseConfig
from shared.config.base import ServiceSection, split_bind
from shared.errors import (
    LakehouseError,
    handle_client_disconnect,
    handle_http_exception,
    handle_lakehouse_error,
    handle_unexpected,
)
from shared.telemetry.logging import AccessLogMiddleware
from shared.telemetry.metrics import Metrics, metrics_route
from shared.web.auth import AuthMiddleware, is_loopback
from shared.web.guard import GuardMiddleware
from shared.web.host import HostHeaderMiddleware
from shared.web.startup import StartupErrorMiddleware


def health_route(service: str) -> Route:
    """GET /health: 200 `ok` once the service serves its API, 503 `loading` before (`app.state.ready` False).

    uvicorn accepts no connection before the lifespan's startup is done, so a service ready when its lifespan
    yields needs nothing more; one that keeps loading after (vectord replaying its log) sets `app.state.ready`
    False in its lifespan and True when it is done, so `lakehouse up`, the gateway and orchestrators wait for it.
    """
    ok = {"status": "ok", "service": service}
    loading = {"status": "loading", "service": service}

    async def health(request: Request) -> JSONResponse:
        if request.app.state.ready:
            return JSONResponse(ok)
        return JSONResponse(loading, status_code=503, headers={"retry-after": "1"})

    return Route("/health", health, methods=["GET"])


def bound_to_loopback(service: str, config: LakehouseConfig) -> bool:
    section = getattr(config, service, None)
    return isinstance(section, ServiceSection) and is_loopback(split_bind(section.bind)[0])


class ServiceApp(Starlette):
    """Starlette with the stack's own middleware in front of Starlette's error middleware.

    Access log and auth see every request (a 500 too); `front` middleware (the gateway's proxy) runs after them
    but before Starlette's stack, so the forwarding hot path skips the layers it does not need.
    """

    def __init__(
        self, *, service: str, front: Sequence[Middleware], outer: Sequence[Middleware] = (), **kwargs: Any
    ) -> None:
        self.service = service
        self.front = list(front)
        self.outer = list(outer)
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for cls, args, kwargs in reversed(self.front):
            app = cls(app, *args, **kwargs)
        app = GuardMiddleware(app, service=self.service)
        for cls, args, kwargs in reversed(self.outer):
            app = cls(app, *args, **kwargs)
        return app


def service_app(
    service: str,
    config: LakehouseConfig,
    routes: Sequence[BaseRoute],
    *,
    lifespan: Lifespan[Starlette] | None = None,
    front: Sequence[Middleware] = (),
    metrics: Metrics | None = None,
    public_paths: Iterable[str] = (),
    public_prefixes: tuple[str, ...] = (),
    signed: Callable[[Scope], bool] | None = None,
    outer: Sequence[Middleware] = (),
    keys: Callable[[Scope, bytes], LakehouseError | None] | None = None,
) -> Starlette:
    """A Starlette app for `service` with GET /health, GET /metrics, auth, request ids, access lines, Host checks and
    JSON errors.

    `front` middleware runs inside auth and the access log, before Starlette's own stack and routing.
    `app.state.metrics` is where a service adds its own metrics (shared/metrics.py).
    `public_paths` / `public_prefixes` need no token (the allow-list still applies), like /health; nor do requests
    `signed` says carry their own credential (S3's signature).
    `keys` checks a bearer that is not the root token as a client key (the gateway's, shared/keys/gate.py).
    `outer` middleware wraps everything, even the guard (a protocol's error shape, shared/web/iceberg_errors.py).
    """
    metrics = metrics or Metrics(service)
    app = ServiceApp(
        service=service,
        outer=outer,
        front=[
            Middleware(StartupErrorMiddleware, service=service),
            Middleware(AccessLogMiddleware, service=service, observe=metrics.observe),
            Middleware(HostHeaderMiddleware),
            Middleware(
                AuthMiddleware,
                token=config.auth.token.get_secret_value(),
                allowed_ips=config.auth.allowed_ips,
                trust_loopback=bound_to_loopback(service, config),
                public_paths=public_paths,
                public_prefixes=public_prefixes,
                signed=signed,
                keys=keys,
            ),
            *front,
        ],
        routes=[health_route(service), metrics_route(metrics), *routes],
        exception_handlers={
            LakehouseError: handle_lakehouse_error,
            HTTPException: handle_http_exception,
            ClientDisconnect: handle_client_disconnect,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.metrics = metrics
    app.state.ready = True
    return app
