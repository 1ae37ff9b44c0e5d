"""Local Ollama: POST /api/chat (NDJSON when streaming), reasoning off unless asked for."""

from __future__ import annotations

from typing import Any

from services.chatd.types import ChatRequest, Completion, Delta, Framing, UpstreamCall

# ChatRequest field -> Ollama `options` key.
OPTION_KEYS = (
    ("max_tokens", "num_predict"),
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("seed", "seed"),
    ("stop", "stop"),
)


def ollama_options(request: ChatRequest, stream: bool) -> dict[str, Any]:
    """The fields /api/chat and /api/generate share: stream, think, format and options."""
    # think=false by default: low-budget callers get direct answers instead of empty content cut at the limit.
    fields: dict[str, Any] = {"stream": stream, "think": request.think}
    if request.format is not None:
        fields["format"] = request.format
    options = {key: value for field, key in OPTION_KEYS if (value := getattr(request, field)) is not None}
    if options:
        fields["options"] = options
    return fields


def _count(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    return value if isinstance(value, int) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def ollama_completion(body: Any, content: Any, thinking: Any) -> Completion:
    if not isinstance(content, str):
        raise ValueError("no text content in the response")
    return Completion(
        content=content,
        finish_reason=body.get("done_reason"),
        prompt_tokens=_count(body, "prompt_eval_count"),
        completion_tokens=_count(body, "eval_count"),
        reasoning=_text(thinking),
    )


def ollama_delta(event: dict[str, Any], content: Any, thinking: Any) -> Delta:
    if not event.get("done"):
        return Delta(_text(content), _text(thinking))
    return Delta(
        _text(content),
        _text(thinking),
        finish_reason=_text(event.get("done_reason")) or None,
        prompt_tokens=_count(event, "prompt_eval_count"),
        completion_tokens=_count(event, "eval_count"),
        done=True,
    )


def ollama_error(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


class OllamaChat:
    framing: Framing = "ndjson"

    def encode(self, request: ChatRequest, model: str, *, stream: bool = False) -> UpstreamCall:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        return UpstreamCall("/api/chat", {"model": model, "messages": messages, **ollama_options(request, stream)})

    def decode(self, body: Any) -> Completion:
        message = body.get("message")
        if not isinstance(message, dict):
            raise ValueError("no text content in the response")
        return ollama_completion(body, message.get("content"), message.get("thinking"))

    def decode_chunk(self, event: Any) -> Delta | None:
        message = event.get("message") or {}
        if not isinstance(message, dict):
            raise ValueError("a stream event's message is not an object")
        return ollama_delta(event, message.get("content"), message.get("thinking"))

    def error_message(self, body: Any) -> str | None:
        return ollama_error(body)
