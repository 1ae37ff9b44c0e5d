"""The registered providers: lookup by name, the default flag, the per-provider counters and cooldowns."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.chatd.provider import Provider
from services.chatd.routing import DEFAULT_PROVIDER
from services.chatd.types import provider_not_registered


class Registry:
    def __init__(self, providers: Mapping[str, Provider], unregistered: Mapping[str, str]) -> None:
        self.providers = dict(providers)
        self.unregistered = dict(unregistered)  # name -> why, for the 404 message

    def get(self, name: str, model: str) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            raise provider_not_registered(name, model, self.unregistered.get(name, "unknown provider"))
        return provider

    def listing(self) -> list[dict[str, Any]]:
        return [
            {
                "name": p.name,
                "default": p.name == DEFAULT_PROVIDER,
                "requests": p.requests,
                "errors": p.errors,
                "cooldown_until": _iso(p.cooldown.until) if p.cooldown.remaining() > 0 else None,
            }
            for p in self.providers.values()
        ]

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
