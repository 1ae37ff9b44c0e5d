"""The routing table: which provider a model string goes to, and the model name sent upstream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PROVIDER = "ollama"


@dataclass(frozen=True, slots=True)
class Route:
    provider: str
    upstream_model: str


def _prefix(prefix: str, provider: str) -> Callable[[str], Route | None]:
    def match(model: str) -> Route | None:
        return Route(provider, model[len(prefix) :]) if model.startswith(prefix) else None

    return match


def _cloud_suffix(model: str) -> Route | None:
    # The cloud API takes plain names: "kimi-k2.6:cloud" is "kimi-k2.6" there.
    return Route("ollama_cloud", model.removesuffix(":cloud")) if model.endswith(":cloud") else None


# First match wins; the order is the contract.
ROUTING_TABLE: tuple[Callable[[str], Route | None], ...] = (
    _prefix("ollama/", "ollama"),
    _prefix("ollama_cloud/", "ollama_cloud"),
    _cloud_suffix,
    _prefix("openrouter/", "openrouter"),
    _prefix("opencode/", "opencode"),
    _prefix("kimi/", "kimi"),
)


def resolve(model: str) -> Route:
    """Route `model`; anything no rule matches goes to the default provider unchanged (no prefix rewrite)."""
    for rule in ROUTING_TABLE:
        route = rule(model)
        if route is not None:
            return route
    return Route(DEFAULT_PROVIDER, model)
