"""observerd's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.observerd import ObserverdConfig
from shared.registry import Service, Writable


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.observerd.app import create_app

    return create_app(config)


SERVICE = Service(
    "observerd",
    ObserverdConfig,
    create_app,
    family="/v1/observer",
    scopes=("logs:read", "logs:write"),
    timeout_secs=30.0,
    writable=(Writable("persist_path", is_file=True),),
)
