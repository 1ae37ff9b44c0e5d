"""The routing table: which provider a model string goes to, and the model name sent upstream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.config.chatd import DEFAULT_PROVIDER, PROVIDERS

__all__ = ["DEFAULT_PROVIDER", "ROUTING_TABLE", "Route", "resolve"]


@dataclass(frozen=True, slots=True)
class Route:
    provider: str
    upstream_model: str


def _prefix(prefix: str, provider: str) -> Callable[[str], Route | None]:
    def match(model: str) -> Route | None:
        return Route(provider, model[len(prefix) :]) if model.startswith(prefix) else None

    return match


def _suffix(suffix: str, provider: str) -> Callable[[str], Route | None]:
    # The cloud API takes plain names: "kimi-k2.6:cloud" is "kimi-k2.6" there.
    def match(model: str) -> Route | None:
        return Route(provider, model.removesuffix(suffix)) if model.endswith(suffix) else None

    return match


# First match wins: the providers' table order, each provider's prefix then its suffix.
ROUTING_TABLE: tuple[Callable[[str], Route | None], ...] = tuple(
    rule for p in PROVIDERS for rule in (_prefix(p.prefix, p.name), *((_suffix(p.suffix, p.name),) if p.suffix else ()))
)


def resolve(model: str) -> Route:
    """Route `model`; anything no rule matches goes to the default provider unchanged (no prefix rewrite)."""
    for rule in ROUTING_TABLE:
        route = rule(model)
        if route is not None:
            return route
    return Route(DEFAULT_PROVIDER, model)
