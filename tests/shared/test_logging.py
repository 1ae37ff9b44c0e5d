from __future__ import annotations

import asyncio
import io
import json
import time

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from shared.config import load_config
from shared.telemetry.logging import configure_logging
from shared.web.app import service_app
from tests.support.servers import asgi_client


def echo_app() -> object:
    async def echo(request: Request) -> JSONResponse:
        structlog.get_logger().info("inside handler")
        return JSONResponse({"seen": request.headers.get("x-request-id")})

    return service_app("testd", load_config(), [Route("/echo", echo)])


async def test_sane_request_id_is_kept_echoed_and_bound() -> None:
    async with asgi_client(echo_app()) as client:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            started = time.perf_counter()
            response = await client.get("/echo", headers={"X-Request-ID": "abc-123"})
            outside_ms = (time.perf_counter() - started) * 1000
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json() == {"seen": "abc-123"}
    handler_line, access_line = logs
    assert handler_line["request_id"] == "abc-123"
    assert access_line == {
        "event": "request",
        "log_level": "info",
        "request_id": "abc-123",
        "service": "testd",
        "method": "GET",
        "path": "/echo",
        "status": 200,
        "duration_ms": access_line["duration_ms"],
    }
    # Measured inside the client's own round trip: never more than what the client saw, never nothing.
    assert 0 < access_line["duration_ms"] <= outside_ms


async def test_duration_is_in_milliseconds() -> None:
    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(0.05)
        return JSONResponse({})

    app = service_app("testd", load_config(), [Route("/slow", slow)])
    async with asgi_client(app) as client:
        with capture_logs() as logs:
            started = time.perf_counter()
            await client.get("/slow")
            outside_ms = (time.perf_counter() - started) * 1000
    # The handler slept 50 ms, so about that much passed (a bound with slack for timer granularity, not a timing).
    assert 40 <= logs[-1]["duration_ms"] <= outside_ms


async def test_missing_or_insane_request_id_is_replaced() -> None:
    async with asgi_client(echo_app()) as client:
        generated = await client.get("/echo")
        insane = await client.get("/echo", headers={"X-Request-ID": "bad id\twith spaces"})
    for response in (generated, insane):
        rid = response.headers["x-request-id"]
        assert len(rid) == 32
        assert response.json() == {"seen": rid}
    assert generated.headers["x-request-id"] != insane.headers["x-request-id"]


async def test_errors_are_json_and_logged() -> None:
    async with asgi_client(echo_app()) as client:
        with capture_logs() as logs:
            response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no route for GET /nowhere"}}
    assert logs[-1]["status"] == 404


def test_json_lines_off_a_tty_and_level_filtering() -> None:
    out = io.StringIO()
    configure_logging("warning", stream=out)
    structlog.get_logger().info("hidden")
    structlog.get_logger().warning("shown", key="value")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["event"], line["level"], line["key"]) for line in lines] == [("shown", "warning", "value")]
    structlog.reset_defaults()


async def test_health_probes_are_quiet_while_ok_or_loading_and_logged_otherwise() -> None:
    app = service_app("testd", load_config(), [])
    async with asgi_client(app) as client:
        with capture_logs() as logs:
            app.state.ready = False
            assert (await client.get("/health")).status_code == 503  # loading: every start meets it
            app.state.ready = True
            assert (await client.get("/health")).status_code == 200
            assert (await client.post("/health")).status_code == 405  # not a probe's answer: worth a line
    assert [(line["log_level"], line["status"]) for line in logs if line["event"] == "request"] == [
        ("debug", 503),
        ("debug", 200),
        ("info", 405),
    ]
