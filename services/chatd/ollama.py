"""Local Ollama: POST /api/chat, non-streaming, reasoning off unless asked for."""

from __future__ import annotations

from typing import Any

from services.chatd.types import ChatRequest, Completion, UpstreamCall


def ollama_options(request: ChatRequest) -> dict[str, Any]:
    """The fields /api/chat and /api/generate share: think, format and options."""
    # think=false by default: low-budget callers get direct answers instead of empty content cut at the limit.
    fields: dict[str, Any] = {"stream": False, "think": request.think}
    if request.format is not None:
        fields["format"] = request.format
    options: dict[str, Any] = {}
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if options:
        fields["options"] = options
    return fields


def ollama_completion(body: Any, content: Any) -> Completion:
    if not isinstance(content, str):
        raise ValueError("no text content in the response")
    prompt = body.get("prompt_eval_count")
    completion = body.get("eval_count")
    return Completion(
        content=content,
        finish_reason=body.get("done_reason"),
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        completion_tokens=completion if isinstance(completion, int) else None,
    )


def ollama_error(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


class OllamaChat:
    def encode(self, request: ChatRequest, model: str) -> UpstreamCall:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        return UpstreamCall("/api/chat", {"model": model, "messages": messages, **ollama_options(request)})

    def decode(self, body: Any) -> Completion:
        message = body.get("message")
        return ollama_completion(body, message.get("content") if isinstance(message, dict) else None)

    def error_message(self, body: Any) -> str | None:
        return ollama_error(body)
