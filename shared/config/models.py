"""[models]: the model tiers, as in the seed: a name per tier and the weak models."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import Section

TIERS = (
    "local_fast",
    "local_embed",
    "local_judge",
    "local_review",
    "cloud_judge",
    "cloud_review",
    "cloud_strong",
    "frontier_review",
    "frontier_arch",
    "frontier_strong",
    "frontier_free",
)


class ModelsConfig(Section):
    local_fast: str = Field("qwen3.5:latest", description="tier 1: local hot path")
    local_embed: str = Field("nomic-embed-text", description="tier 1: local embeddings")
    local_judge: str = Field("qwen3.5:latest", description="tier 1: local judge")
    local_review: str = Field("qwen3.5:latest", description="tier 1: local review")
    cloud_judge: str = Field("kimi-k2.6:cloud", description="tier 2: Ollama Cloud judge")
    cloud_review: str = Field("qwen3-coder:480b", description="tier 2: Ollama Cloud review")
    cloud_strong: str = Field("deepseek-v3.2", description="tier 2: Ollama Cloud strong")
    frontier_review: str = Field("openrouter/anthropic/claude-opus-4-7", description="tier 3: review")
    frontier_arch: str = Field("openrouter/moonshotai/kimi-k2-0905", description="tier 3: architecture")
    frontier_strong: str = Field("openrouter/openai/gpt-5", description="tier 3: strongest")
    frontier_free: str = Field("opencode/claude-opus-4-7", description="tier 3: OpenCode")
    weak_models: list[str] = Field(
        default_factory=lambda: ["qwen3.5:latest", "qwen3:latest"],
        description="models eligible for the local hot path (bypass the downgrade gate)",
    )

    def resolve(self, tier: str) -> str:
        """The model id configured for `tier`, or "" for an unknown tier."""
        if tier not in TIERS:
            return ""
        value: str = getattr(self, tier)
        return value

    def is_weak(self, model: str) -> bool:
        return model in self.weak_models
