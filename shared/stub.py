"""An honest stub: a service whose family answers 501 not_implemented until it is built."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.app import service_app
from shared.config import LakehouseConfig
from shared.errors import error_response
from shared.topology import SERVICES

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def stub_app(service: str, config: LakehouseConfig) -> Starlette:
    row = SERVICES[service]
    message = f"{service} is not implemented yet"

    async def not_implemented(request: Request) -> Response:
        return error_response("not_implemented", message)

    routes = [Route(path, not_implemented, methods=ALL_METHODS) for path in row.routes]
    routes.append(Route(row.family + "/{rest:path}", not_implemented, methods=ALL_METHODS))
    return service_app(service, config, routes)
