"""vectord's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.vectord import VectordConfig
from shared.registry import Service, Writable


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.vectord.app import create_app

    return create_app(config)


SERVICE = Service(
    "vectord",
    VectordConfig,
    create_app,
    family="/v1/vectors",
    scopes=("vectors:read", "vectors:write"),
    reads_by_post=("/query",),
    timeout_secs=60.0,
    optional_urls=frozenset({"storaged_url"}),
    writable=(Writable("cache_dir", made=True),),
)
