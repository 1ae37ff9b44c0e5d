"""The gateway's row in the service registry (entry point `lakehouse.services`, see shared/registry.py): the one
service with no family, in front of all the others."""

from __future__ import annotations

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.gateway import GatewayConfig
from shared.registry import Service, Writable


def create_app(config: LakehouseConfig) -> ASGIApp:
    from gateway.app import create_app

    return create_app(config)


SERVICE = Service("gateway", GatewayConfig, create_app, writable=(Writable("state_dir", made=True),))
