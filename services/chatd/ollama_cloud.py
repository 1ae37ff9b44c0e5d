"""Ollama Cloud: POST /api/generate with a Bearer key; the conversation is flattened into system + prompt."""

from __future__ import annotations

from typing import Any

from services.chatd.ollama import ollama_completion, ollama_delta, ollama_error, ollama_options
from services.chatd.types import ChatRequest, Completion, Delta, Framing, Message, UpstreamCall

ROLE_LABELS = {"user": "User", "assistant": "Assistant"}


def flatten_messages(messages: list[Message]) -> tuple[str, str]:
    """(system, prompt): system messages joined; one user message verbatim, else labelled turns in order."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user":
        return system, turns[0].content
    return system, "\n\n".join(f"{ROLE_LABELS[m.role]}: {m.content}" for m in turns)


class OllamaGenerate:
    framing: Framing = "ndjson"

    def encode(self, request: ChatRequest, model: str, *, stream: bool = False) -> UpstreamCall:
        system, prompt = flatten_messages(request.messages)
        payload: dict[str, Any] = {"model": model, "prompt": prompt}
        if system:
            payload["system"] = system
        return UpstreamCall("/api/generate", {**payload, **ollama_options(request, stream)})

    def decode(self, body: Any) -> Completion:
        return ollama_completion(body, body.get("response"), body.get("thinking"))

    def decode_chunk(self, event: Any) -> Delta | None:
        return ollama_delta(event, event.get("response"), event.get("thinking"))

    def error_message(self, body: Any) -> str | None:
        return ollama_error(body)
