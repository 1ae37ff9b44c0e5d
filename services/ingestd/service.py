"""ingestd's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.ingestd import IngestConfig
from shared.registry import Service, Writable


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.ingestd.app import create_app

    return create_app(config)


SERVICE = Service(
    "ingestd",
    IngestConfig,
    create_app,
    family="/v1/ingest",
    scopes=("ingest", "ingest"),
    timeout_secs=600.0,
    writable=(Writable("temp_dir"),),
)
