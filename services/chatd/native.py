"""The native /v1/chat wire format: the response body, and the NDJSON lines of a stream. Pure: no I/O."""

from __future__ import annotations

from typing import Any

import orjson

from services.chatd.types import Delta
from shared.errors import LakehouseError


def native_body(
    provider: str,
    model: str,
    content: str,
    finish_reason: str | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    latency_ms: float,
) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": model,
        "content": content,
        "finish_reason": finish_reason,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_ms": latency_ms,
    }


def delta_line(delta: Delta) -> bytes:
    if delta.reasoning:
        return orjson.dumps({"delta": delta.content, "reasoning": delta.reasoning}) + b"\n"
    return b'{"delta":' + orjson.dumps(delta.content) + b"}\n" if delta.content else b""


def final_line(body: dict[str, Any]) -> bytes:
    return orjson.dumps({**body, "done": True}) + b"\n"


def error_line(exc: LakehouseError) -> bytes:
    return orjson.dumps({"error": {"code": exc.code, "message": exc.message}}) + b"\n"
