"""Ollama Cloud: POST /api/generate with a Bearer key; the conversation is flattened into system + prompt."""

from __future__ import annotations

from typing import Any

from services.chatd.ollama import ollama_completion, ollama_error, ollama_options
from services.chatd.types import ChatRequest, Completion, Message, UpstreamCall

ROLE_LABELS = {"user": "User", "assistant": "Assistant"}


def flatten_messages(messages: list[Message]) -> tuple[str, str]:
    """(system, prompt): system messages joined; one user message verbatim, else labelled turns in order."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user":
        return system, turns[0].content
    return system, "\n\n".join(f"{ROLE_LABELS[m.role]}: {m.content}" for m in turns)


class OllamaGenerate:
    def encode(self, request: ChatRequest, model: str) -> UpstreamCall:
        system, prompt = flatten_messages(request.messages)
        payload: dict[str, Any] = {"model": model, "prompt": prompt}
        if system:
            payload["system"] = system
        return UpstreamCall("/api/generate", {**payload, **ollama_options(request)})

    def decode(self, body: Any) -> Completion:
        return ollama_completion(body, body.get("response"))

    def error_message(self, body: Any) -> str | None:
        return ollama_error(body)
