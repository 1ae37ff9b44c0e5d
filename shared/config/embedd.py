"""[embedd]: the embedding backend and the cache."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Bind, ServiceSection, Url


class EmbeddConfig(ServiceSection):
    bind: Bind = Field("127.0.0.1:3216", description="address embedd listens on")
    provider_url: Url = Field("http://localhost:11434", description="embedding backend (Ollama)")
    default_model: str = Field("nomic-embed-text", description="model used when a request names none")
    cache_size: int = Field(10_000, ge=0, description="LRU cache entries; 0 disables caching")
    timeout_secs: float = Field(30.0, gt=0, description="seconds to wait for the Ollama at provider_url")
