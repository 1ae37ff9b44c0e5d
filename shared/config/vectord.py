"""[vectord]: where indexes persist, where their snapshots are cached, and when they are snapshotted."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection, Url


class VectordConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3215", description="address vectord listens on")
    storaged_url: Url = Field("http://127.0.0.1:3211", description='storaged for index persistence; "" = none')
    cache_dir: str = Field(
        "lakehouse-data/vectord",
        description='a local copy of each index\'s latest snapshot, restored from at startup; "" = fetch from storaged',
    )
    snapshot_bytes: int = Field(
        64 << 20, gt=0, description="log bytes written since the last snapshot that trigger the next one"
    )
    snapshot_idle_secs: float = Field(
        60.0,
        ge=0,
        description="seconds without a write after which what the log holds is snapshotted (0 = only by size)",
    )
