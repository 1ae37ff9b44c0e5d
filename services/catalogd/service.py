"""catalogd's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.catalogd import CatalogConfig
from shared.registry import Service


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.catalogd.app import create_app

    return create_app(config)


SERVICE = Service(
    "catalogd",
    CatalogConfig,
    create_app,
    family="/v1/catalog",
    scopes=("catalog:read", "catalog:write"),
    more_families=("/v1/iceberg",),
    timeout_secs=30.0,
)
