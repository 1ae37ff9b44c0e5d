"""storaged's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from starlette.types import ASGIApp

from services.storaged.schemas import OBJECTS
from shared.config import LakehouseConfig
from shared.config.storaged import StoragedConfig
from shared.registry import Service, Writable


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.storaged.app import create_app

    return create_app(config)


SERVICE = Service(
    "storaged",
    StoragedConfig,
    create_app,
    family="/v1/storage",
    scopes=("storage:read", "storage:write"),
    timeout_secs=300.0,
    writable=(Writable("root"),),
    serves_s3=True,
    bucket_path=OBJECTS,
)
