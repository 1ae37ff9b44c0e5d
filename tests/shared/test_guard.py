"""The outermost guard: any exception (middleware included) is a JSON 500, and the log carries the stack trace."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import load_config
from shared.telemetry.logging import configure_logging
from shared.web.app import service_app
from tests.support.servers import run_server


class Exploding:
    """A middleware that fails before any response, as a bug in one would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/middleware-bug":
            raise KeyError("middleware_marker")
        await self.app(scope, receive, send)


def buggy_app() -> Any:
    async def handler_bug(request: Request) -> JSONResponse:
        raise ZeroDivisionError("handler_marker")

    async def fine(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return service_app(
        "testd",
        load_config(),
        [Route("/handler-bug", handler_bug), Route("/fine", fine)],
        front=[Middleware(Exploding)],
    )


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_an_exception_in_middleware_is_a_json_500_with_the_trace_logged() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream, json=True)
    async with run_server(buggy_app()) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/middleware-bug")
        assert (await client.get("/fine")).status_code == 200  # the server carries on
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error; see the service log"}}
    assert "middleware_marker" not in response.text
    errors = [line for line in log_lines(stream) if line["level"] == "error"]
    assert len(errors) == 1
    assert "Traceback (most recent call last)" in errors[0]["exception"]
    assert "KeyError: 'middleware_marker'" in errors[0]["exception"]
    assert errors[0]["path"] == "/middleware-bug"


async def test_an_exception_in_a_handler_is_logged_once_with_the_trace() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream, json=True)
    async with run_server(buggy_app()) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/handler-bug")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    text = stream.getvalue()
    assert "<traceback object" not in text
    errors = [line for line in log_lines(stream) if line["level"] == "error"]
    assert len(errors) == 1
    assert "ZeroDivisionError: handler_marker" in errors[0]["exception"]


def test_stdlib_records_with_exc_info_render_the_trace_in_json() -> None:
    """uvicorn logs through the stdlib with exc_info; the JSON line must carry the trace, not a repr of it."""
    stream = io.StringIO()
    configure_logging("info", stream=stream, json=True)
    try:
        raise ValueError("stdlib_marker")
    except ValueError as exc:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=exc)
    (line,) = log_lines(stream)
    assert "<traceback object" not in stream.getvalue()
    assert "ValueError: stdlib_marker" in line["exception"]
