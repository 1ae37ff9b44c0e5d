"""The frame every service's Starlette app is built in: standard middleware, error bodies, /health."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Lifespan

from shared.auth import AuthMiddleware
from shared.config import LakehouseConfig
from shared.errors import LakehouseError, handle_http_exception, handle_lakehouse_error, handle_unexpected
from shared.host import HostHeaderMiddleware
from shared.logging import AccessLogMiddleware


def health_route(service: str) -> Route:
    body = {"status": "ok", "service": service}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(body)

    return Route("/health", health, methods=["GET"])


class ServiceApp(Starlette):
    """Starlette with the stack's own middleware in front of Starlette's error middleware.

    Access log and auth see every request (a 500 too); `front` middleware (the gateway's proxy) runs after them
    but before Starlette's stack, so the forwarding hot path skips the layers it does not need.
    """

    def __init__(self, *, front: Sequence[Middleware], **kwargs: Any) -> None:
        self.front = list(front)
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for cls, args, kwargs in reversed(self.front):
            app = cls(app, *args, **kwargs)
        return app


def service_app(
    service: str,
    config: LakehouseConfig,
    routes: Sequence[BaseRoute],
    *,
    lifespan: Lifespan[Starlette] | None = None,
    front: Sequence[Middleware] = (),
) -> Starlette:
    """A Starlette app for `service` with GET /health, auth, request ids, access lines, Host checks, JSON errors.

    `front` middleware runs inside auth and the access log, before Starlette's own stack and routing.
    """
    app = ServiceApp(
        front=[
            Middleware(AccessLogMiddleware, service=service),
            Middleware(HostHeaderMiddleware),
            Middleware(
                AuthMiddleware,
                token=config.auth.token.get_secret_value(),
                allowed_ips=config.auth.allowed_ips,
            ),
            *front,
        ],
        routes=[health_route(service), *routes],
        exception_handlers={
            LakehouseError: handle_lakehouse_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.config = config
    return app
