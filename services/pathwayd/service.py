"""pathwayd's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.pathwayd import PathwaydConfig
from shared.registry import Service, Writable


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.pathwayd.app import create_app

    return create_app(config)


SERVICE = Service(
    "pathwayd",
    PathwaydConfig,
    create_app,
    family="/v1/pathway",
    scopes=("logs:read", "logs:write"),
    timeout_secs=30.0,
    writable=(Writable("persist_path", is_file=True),),
)
