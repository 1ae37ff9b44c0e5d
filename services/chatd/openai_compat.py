"""The OpenAI Chat Completions family: OpenRouter, OpenCode Zen and Kimi For Coding."""

from __future__ import annotations

from typing import Any

from services.chatd.types import ChatRequest, Completion, UpstreamCall


def _tokens(usage: Any, key: str) -> int | None:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) else None


class OpenAIChat:
    def encode(self, request: ChatRequest, model: str) -> UpstreamCall:
        payload: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.max_tokens is not None:
            payload["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.format == "json":
            payload["response_format"] = {"type": "json_object"}
        return UpstreamCall("/chat/completions", payload)

    def decode(self, body: Any) -> Completion:
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError("the response has zero choices")
        choice = choices[0]
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if content is None and isinstance(message, dict):
            content = ""  # a tool-only or refusal answer carries no text
        if not isinstance(content, str):
            raise ValueError("choices[0].message.content is not text")
        # Some providers report usage inside the choice rather than at the top level.
        usage = body.get("usage") or choice.get("usage")
        return Completion(
            content=content,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=_tokens(usage, "prompt_tokens"),
            completion_tokens=_tokens(usage, "completion_tokens"),
        )

    def error_message(self, body: Any) -> str | None:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            message = error.get("message")
            return message if isinstance(message, str) else None
        return error if isinstance(error, str) else None
