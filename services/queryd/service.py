"""queryd's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.queryd import QuerydConfig
from shared.registry import Service


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.queryd.app import create_app

    return create_app(config)


SERVICE = Service(
    "queryd",
    QuerydConfig,
    create_app,
    family="/v1/sql",
    scopes=("sql", "sql"),
    timeout_secs=300.0,
)
