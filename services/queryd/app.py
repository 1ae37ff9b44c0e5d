from __future__ import annotations

from starlette.applications import Starlette

from shared.config import LakehouseConfig
from shared.stub import stub_app


def create_app(config: LakehouseConfig) -> Starlette:
    return stub_app("queryd", config)
