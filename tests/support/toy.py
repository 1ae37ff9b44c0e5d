"""A toy service that exists only as a registry row and an app factory: what adding a service takes.

tests/support/plugins.py registers it through a real `lakehouse.services` entry point (a dist-info folder put on
the path), so config, `up`, the gateway, health, status and systemd units find it exactly as they find the eleven.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.base import Bind, ServiceSection
from shared.registry import Service, Writable
from shared.web.app import service_app


class ToyConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3299", description="address toyd listens on")
    greeting: str = Field("hello", description="what the toy says")
    data_dir: str = Field("toy-data", description="where the toy would write")


def create_app(config: LakehouseConfig) -> ASGIApp:
    section = config.section("toyd")
    assert isinstance(section, ToyConfig)

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"greeting": section.greeting, "path": request.url.path})

    routes = [Route("/v1/toy/hello", hello), Route("/v1/toy-exact", hello)]
    return service_app("toyd", config, routes)


SERVICE = Service(
    "toyd",
    ToyConfig,
    create_app,
    family="/v1/toy",
    exact_paths=("/v1/toy-exact",),
    scopes=("toy:read", "toy:write"),
    timeout_secs=7.0,
    writable=(Writable("data_dir"),),
)
