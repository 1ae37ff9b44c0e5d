"""[storaged]: where objects live and how big a PUT may be."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.config.base import Bind, ServiceSection


class StoragedConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3211", description="address storaged listens on")
    backend: Literal["local", "s3"] = Field("local", description='where objects live: "local" (root) or "s3" ([s3])')
    root: str = Field("lakehouse-data/objects", description="local backend's directory (relative to the cwd)")
    max_put_bytes: int = Field(256 << 20, gt=0, description="largest object a PUT may store, in bytes")
