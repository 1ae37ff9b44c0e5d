"""An OpenAI-protocol fake: POST /chat/completions, whole or as SSE chunks (with usage when asked for).

Run with `python -m tests.support.fakes.openai --port N`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.fakes.recorder import FakeUpstream, echo_words, run_fake, stream_pieces


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def _event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _stream(fake: FakeUpstream, body: dict[str, Any], words: list[str], finish: str, usage: dict[str, int]) -> Response:
    head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        return _event({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in stream_pieces(words)]
    events.append(chunk({}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(_event({**head, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    error = _event({"error": {"message": "the fake failed mid-stream (on purpose)", "type": "server_error"}})
    return StreamingResponse(fake.chunks(events, error), media_type="text/event-stream")


def create_app(fake: FakeUpstream, *, key: str = "") -> Starlette:
    async def completions(request: Request) -> Response:
        body, scripted = await fake.take(request)
        if scripted is not None:
            return scripted
        if key and request.headers.get("authorization") != f"Bearer {key}":
            return _error(401, "invalid api key", "authentication_error")
        model = body.get("model")
        if model not in fake.models:
            return _error(404, f"model {model} does not exist", "invalid_request_error")
        messages = body.get("messages") or []
        words, cut = echo_words(messages[-1]["content"] if messages else "", body.get("max_tokens"))
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        finish = "length" if cut else "stop"
        if body.get("stream"):
            return _stream(fake, body, words, finish, usage)
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": " ".join(words)}, "finish_reason": finish}
                ],
                "usage": usage,
            }
        )

    app = Starlette(
        routes=[
            Route("/chat/completions", completions, methods=["POST"]),
            Route("/_fake/requests", fake.requests_endpoint, methods=["GET"]),
            Route("/_fake/stats", fake.stats_endpoint, methods=["GET"]),
            Route("/_fake/settings", fake.settings_endpoint, methods=["POST"]),
        ]
    )
    app.state.fake = fake
    return app


def main(argv: Sequence[str] | None = None) -> None:
    run_fake(create_app, argv, "OpenAI-protocol fake upstream")


if __name__ == "__main__":
    main()
