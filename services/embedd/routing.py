"""Which backend a model name goes to, and the name it is known by there (chatd's prefix rule, for embeddings)."""

from __future__ import annotations

from dataclasses import dataclass

from services.embedd.backend import Backend
from services.embedd.builtin import BUILTIN_PREFIX
from shared.errors import LakehouseError

# prefix → backend name; a model with none of these prefixes goes to the default backend unchanged.
PREFIXES: dict[str, str] = {BUILTIN_PREFIX: "builtin", "ollama/": "ollama"}
DEFAULT_BACKEND = "ollama"
# What to set so a backend is registered, for the 404 when it is not.
HOW_TO_REGISTER: dict[str, str] = {"ollama": "set embedd.provider_url to an Ollama"}


@dataclass(frozen=True, slots=True)
class Route:
    backend: Backend
    model: str

    @property
    def cache_scope(self) -> str:
        """Cache entries are shared by every name that reaches the same model ("x" and "ollama/x")."""
        return f"{self.backend.name}/{self.model}"


class Router:
    def __init__(self, backends: dict[str, Backend]) -> None:
        self.backends = backends

    def resolve(self, model: str) -> Route:
        name, upstream = DEFAULT_BACKEND, model
        for prefix, backend_name in PREFIXES.items():
            if model.startswith(prefix):
                name, upstream = backend_name, model.removeprefix(prefix)
                break
        backend = self.backends.get(name)
        if backend is None:
            raise LakehouseError(
                "provider_not_registered",
                f'model "{model}" routes to backend "{name}", which is not registered ({HOW_TO_REGISTER[name]})',
            )
        if not upstream:
            raise LakehouseError("invalid_request", f'model "{model}" names no model after the prefix')
        backend.check(upstream)
        return Route(backend, upstream)

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()
