"""GET /v1/models: the configured tiers, and the local Ollama's models as `ollama/<name>`."""

from __future__ import annotations

from typing import Any

from services.chatd.registry import Registry
from shared.config.models import TIERS, ModelsConfig

# The list must answer promptly even when the local Ollama is down or slow.
TAGS_TIMEOUT_SECS = 2.0


def _entry(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


async def model_list(models: ModelsConfig, registry: Registry) -> dict[str, Any]:
    data = [_entry(tier, "lakehouse") for tier in TIERS if models.resolve(tier)]
    ollama = registry.providers.get("ollama")
    if ollama is not None:
        tags = await ollama.get("/api/tags", TAGS_TIMEOUT_SECS)
        listed = tags.get("models") if isinstance(tags, dict) else None
        for item in listed if isinstance(listed, list) else []:
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name:
                data.append(_entry(f"ollama/{name}", "ollama"))
    return {"object": "list", "data": data}
