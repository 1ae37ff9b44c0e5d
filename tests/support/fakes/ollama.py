"""An Ollama-protocol fake: /api/chat, /api/generate (whole or NDJSON streams), /api/embed, /api/tags.

Run with `python -m tests.support.fakes.ollama --port N`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.fakes.recorder import FakeUpstream, echo_words, run_fake, stream_pieces

THINKING = "the user wants an echo"


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode() + b"\n"


def _reply(fake: FakeUpstream, body: Any, text: str, prompt_words: int, field: str) -> Response:
    model = body.get("model") if isinstance(body, dict) else None
    if model not in fake.models:
        return JSONResponse({"error": f"model '{model}' not found"}, status_code=404)
    options = body.get("options") or {}
    words, cut = echo_words(text, options.get("num_predict"))
    totals = {
        "done_reason": "length" if cut else "stop",
        "prompt_eval_count": prompt_words,
        "eval_count": len(words),
    }
    think = bool(body.get("think"))

    def piece(content: str, thinking: str = "") -> dict[str, Any]:
        if field == "message":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            return {"message": message}
        return {"response": content, **({"thinking": thinking} if thinking else {})}

    if not body.get("stream", True):
        answer = piece(" ".join(words), THINKING if think else "")
        return JSONResponse({"model": model, **answer, "done": True, **totals})
    events = [_line({"model": model, **piece("", THINKING), "done": False})] if think else []
    events += [_line({"model": model, **piece(p), "done": False}) for p in stream_pieces(words)]
    events.append(_line({"model": model, **piece(""), "done": True, **totals}))
    error = _line({"error": "the fake failed mid-stream (on purpose)"})
    return StreamingResponse(fake.chunks(events, error), media_type="application/x-ndjson")


# The fake's embeddings: words hashed into this many buckets, so texts sharing words point the same way.
EMBED_DIMENSIONS = 16


def fake_embedding(text: str) -> list[float]:
    vector = [0.0] * EMBED_DIMENSIONS
    for word in text.lower().split():
        vector[hashlib.sha256(word.encode()).digest()[0] % EMBED_DIMENSIONS] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def create_app(fake: FakeUpstream) -> Starlette:
    async def chat(request: Request) -> Response:
        body, scripted = await fake.take(request)
        if scripted is not None:
            return scripted
        messages = body.get("messages") or []
        last = messages[-1]["content"] if messages else ""
        words = sum(len(m["content"].split()) for m in messages)
        return _reply(fake, body, last, words, "message")

    async def generate(request: Request) -> Response:
        body, scripted = await fake.take(request)
        if scripted is not None:
            return scripted
        prompt = body.get("prompt", "")
        words = len((body.get("system", "") + " " + prompt).split())
        return _reply(fake, body, prompt, words, "response")

    async def embed(request: Request) -> Response:
        body, scripted = await fake.take(request)
        if scripted is not None:
            return scripted
        model = body.get("model")
        if model not in fake.models:
            return JSONResponse({"error": f'model "{model}" not found, try pulling it first'}, status_code=404)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        return JSONResponse(
            {
                "model": model,
                "embeddings": [fake_embedding(text) for text in texts],
                "prompt_eval_count": sum(len(text.split()) for text in texts),
            }
        )

    async def tags(request: Request) -> Response:
        return JSONResponse({"models": [{"name": m} for m in sorted(fake.models)]})

    app = Starlette(
        routes=[
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/generate", generate, methods=["POST"]),
            Route("/api/embed", embed, methods=["POST"]),
            Route("/api/tags", tags, methods=["GET"]),
            Route("/_fake/requests", fake.requests_endpoint, methods=["GET"]),
            Route("/_fake/stats", fake.stats_endpoint, methods=["GET"]),
            Route("/_fake/settings", fake.settings_endpoint, methods=["POST"]),
        ]
    )
    app.state.fake = fake
    return app


def main(argv: Sequence[str] | None = None) -> None:
    run_fake(create_app, argv, "Ollama-protocol fake upstream")


if __name__ == "__main__":
    main()
