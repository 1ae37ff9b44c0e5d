"""The OpenAI Chat Completions family: OpenRouter, OpenCode Zen and Kimi For Coding (SSE when streaming)."""

from __future__ import annotations

from typing import Any

from services.chatd.types import ChatRequest, Completion, Delta, Framing, UpstreamCall

PASSED_THROUGH = ("max_tokens", "temperature", "top_p", "stop", "seed")


def _tokens(usage: Any, key: str) -> int | None:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) else None


def _reasoning(message: dict[str, Any]) -> str:
    # OpenRouter says "reasoning", DeepSeek-style APIs "reasoning_content".
    value = message.get("reasoning_content") or message.get("reasoning")
    return value if isinstance(value, str) else ""


def response_format(request: ChatRequest) -> dict[str, Any]:
    if request.format == "json":
        return {"type": "json_object"}
    spec = request.json_schema or {"name": "response", "schema": request.format}
    return {"type": "json_schema", "json_schema": spec}


class OpenAIChat:
    framing: Framing = "sse"

    def encode(self, request: ChatRequest, model: str, *, stream: bool = False) -> UpstreamCall:
        payload: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        for field in PASSED_THROUGH:
            value = getattr(request, field)
            if value is not None:
                payload[field] = value
        if request.format is not None:
            payload["response_format"] = response_format(request)
        if stream:
            # Usage in the stream is opt-in on OpenAI-compatible APIs; the client's include_usage needs real counts.
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
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
        if not isinstance(content, str) or not isinstance(message, dict):
            raise ValueError("choices[0].message.content is not text")
        # Some providers report usage inside the choice rather than at the top level.
        usage = body.get("usage") or choice.get("usage")
        return Completion(
            content=content,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=_tokens(usage, "prompt_tokens"),
            completion_tokens=_tokens(usage, "completion_tokens"),
            reasoning=_reasoning(message),
        )

    def decode_chunk(self, event: Any) -> Delta | None:
        choices = event.get("choices") or []
        choice = choices[0] if isinstance(choices, list) and choices else {}
        if not isinstance(choice, dict):
            raise ValueError("a stream event's choice is not an object")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise ValueError("a stream event's delta is not an object")
        content = delta.get("content")
        usage = event.get("usage") or choice.get("usage")
        finish = choice.get("finish_reason")
        return Delta(
            content if isinstance(content, str) else "",
            _reasoning(delta),
            finish_reason=finish if isinstance(finish, str) else None,
            prompt_tokens=_tokens(usage, "prompt_tokens"),
            completion_tokens=_tokens(usage, "completion_tokens"),
        )

    def error_message(self, body: Any) -> str | None:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            message = error.get("message")
            return message if isinstance(message, str) else None
        return error if isinstance(error, str) else None
