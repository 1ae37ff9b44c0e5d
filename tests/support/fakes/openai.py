"""An OpenAI-protocol fake: POST /chat/completions; run with `python -m tests.support.fakes.openai --port N`."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fakes.recorder import FakeUpstream, echo_text, run_fake


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


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
        content, cut = echo_text(messages[-1]["content"] if messages else "", body.get("max_tokens"))
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "length" if cut else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(content.split()),
                    "total_tokens": prompt_tokens + len(content.split()),
                },
            }
        )

    app = Starlette(
        routes=[
            Route("/chat/completions", completions, methods=["POST"]),
            Route("/_fake/requests", fake.requests_endpoint, methods=["GET"]),
        ]
    )
    app.state.fake = fake
    return app


def main(argv: Sequence[str] | None = None) -> None:
    run_fake(create_app, argv, "OpenAI-protocol fake upstream")


if __name__ == "__main__":
    main()
