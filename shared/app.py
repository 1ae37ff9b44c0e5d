"""The frame every service's Starlette app is built in: standard middleware, error bodies, /health."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan

from shared.auth import AuthMiddleware
from shared.config import LakehouseConfig
from shared.errors import LakehouseError, handle_http_exception, handle_lakehouse_error, handle_unexpected
from shared.logging import AccessLogMiddleware


def health_route(service: str) -> Route:
    body = {"status": "ok", "service": service}

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(body)

    return Route("/health", health, methods=["GET"])


def service_app(
    service: str,
    config: LakehouseConfig,
    routes: Sequence[BaseRoute],
    *,
    lifespan: Lifespan[Starlette] | None = None,
) -> Starlette:
    """A Starlette app for `service` with GET /health, auth, request ids, access lines and JSON errors."""
    app = Starlette(
        routes=[health_route(service), *routes],
        middleware=[
            Middleware(AccessLogMiddleware, service=service),
            Middleware(
                AuthMiddleware,
                token=config.auth.token.get_secret_value(),
                allowed_ips=config.auth.allowed_ips,
            ),
        ],
        exception_handlers={
            LakehouseError: handle_lakehouse_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    app.state.config = config
    return app
