"""[catalogd]: the storaged that keeps the catalog."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection, Url


class CatalogConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3212", description="address catalogd listens on")
    storaged_url: Url = Field("http://127.0.0.1:3211", description="storaged, where manifests are persisted")
