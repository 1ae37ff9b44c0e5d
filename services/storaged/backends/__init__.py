"""storaged's backends by their `[storaged] backend` name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from services.storaged.backends.base import Backend
from services.storaged.backends.local import LocalBackend
from services.storaged.backends.s3 import S3Backend
from shared.config import LakehouseConfig

BACKENDS: dict[str, Callable[[LakehouseConfig], Backend]] = {
    "local": lambda config: LocalBackend(Path(config.storaged.root)),
    "s3": lambda config: S3Backend(config.s3),
}


def build_backend(config: LakehouseConfig) -> Backend:
    return BACKENDS[config.storaged.backend](config)
