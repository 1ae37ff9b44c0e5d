from __future__ import annotations

import pytest

from services.chatd.routing import Route, resolve


@pytest.mark.parametrize(
    ("model", "provider", "upstream"),
    [
        ("ollama/qwen3.5:latest", "ollama", "qwen3.5:latest"),
        ("ollama/kimi-k2.6:cloud", "ollama", "kimi-k2.6:cloud"),  # the first matching row wins
        ("ollama_cloud/deepseek-v3.2", "ollama_cloud", "deepseek-v3.2"),
        ("kimi-k2.6:cloud", "ollama_cloud", "kimi-k2.6"),
        ("openrouter/anthropic/claude-opus-4-7", "openrouter", "anthropic/claude-opus-4-7"),
        ("opencode/claude-opus-4-7", "opencode", "claude-opus-4-7"),
        ("kimi/kimi-for-coding", "kimi", "kimi-for-coding"),
        ("qwen3.5:latest", "ollama", "qwen3.5:latest"),
        ("unknown/qwen3.5:latest", "ollama", "unknown/qwen3.5:latest"),
        ("ollamax/m", "ollama", "ollamax/m"),
    ],
)
def test_routing_table(model: str, provider: str, upstream: str) -> None:
    assert resolve(model) == Route(provider, upstream)
