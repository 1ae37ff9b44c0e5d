"""embedd's row in the service registry (entry point `lakehouse.services`, see shared/registry.py)."""

from __future__ import annotations

from starlette.types import ASGIApp

from shared.config import LakehouseConfig
from shared.config.embedd import EmbeddConfig
from shared.registry import Service


def create_app(config: LakehouseConfig) -> ASGIApp:
    # Imported when the service is built, not when the registry is read: the app pulls in its engines.
    from services.embedd.app import create_app

    return create_app(config)


SERVICE = Service(
    "embedd",
    EmbeddConfig,
    create_app,
    family="/v1/embed",
    scopes=("embed", "embed"),
    exact_paths=("/v1/embeddings",),
    timeout_secs=60.0,
)
