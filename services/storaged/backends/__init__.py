"""storaged's backends by their `[storaged] backend` name, and the part store that suits each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from services.storaged.backends.base import Backend
from services.storaged.backends.local import LocalBackend
from services.storaged.backends.local_parts import LocalParts
from services.storaged.backends.parts import ObjectParts, PartStore
from services.storaged.backends.s3 import S3Backend
from shared.config import LakehouseConfig

BACKENDS: dict[str, Callable[[LakehouseConfig], Backend]] = {
    "local": lambda config: LocalBackend(Path(config.storaged.root)),
    "s3": lambda config: S3Backend(config.s3),
}


def build_backend(config: LakehouseConfig) -> Backend:
    return BACKENDS[config.storaged.backend](config)


def part_store(backend: Backend) -> PartStore:
    """Multipart parts written in place where the backend is local files; objects of their own elsewhere."""
    return LocalParts(backend) if isinstance(backend, LocalBackend) else ObjectParts(backend)
