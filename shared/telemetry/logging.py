"""structlog setup, and the middleware that gives every request an id and one access line."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# uvicorn's start-up and shutdown chatter: eleven processes saying it at info buries what matters.
UVICORN_CHATTER = (
    "Started server process",
    "Waiting for application startup",
    "Application startup complete",
    "Uvicorn running on",
    "Shutting down",
    "Waiting for application shutdown",
    "Application shutdown complete",
    "Finished server process",
    "Waiting for connections to close",
)
# Probes (orchestrators, `lakehouse up`, the gateway's /v1/health) hit /health every few seconds. Their answers
# "ok" (200) and "loading" (503, while a service such as vectord replays its log at start) are the prober's to
# report; any other status of a probe (a 500, a 401 for a prober without the token) is logged.
QUIET_PATHS = frozenset({"/health", "/v1/health"})
QUIET_STATUSES = frozenset({200, 503})

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


class IsoTimestamp:
    """structlog's TimeStamper(fmt="iso") at a third of the cost: the seconds part is formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: object, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


def _orjson_text(obj: Any, **kwargs: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure_logging(level: str = "info", *, stream: TextIO | None = None, json: bool | None = None) -> None:
    """Route structlog and the stdlib (uvicorn) through one renderer: JSON lines off a TTY, console on one."""
    out = stream if stream is not None else sys.stdout
    as_json = not out.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_text) if as_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        IsoTimestamp(),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.addFilter(ChatterToDebug(LEVELS[level]))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            # format_exc_info: without it a stdlib record's exc_info reaches the JSON renderer as a raw tuple.
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # httpx logs every request at INFO; our access and chat lines already say what matters.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, LEVELS[level]))


class ChatterToDebug(logging.Filter):
    """Demotes uvicorn's start-up and shutdown lines to debug, then applies the configured level to them."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("uvicorn") and str(record.msg).startswith(UVICORN_CHATTER):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.level <= logging.DEBUG
        return True


def request_id_from(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            return value if _SANE_REQUEST_ID.fullmatch(value) else None
    return None


class AccessLogMiddleware:
    """Keeps a sane client X-Request-ID (or makes one), puts it in the request headers so the gateway forwards it,
    echoes it in the response, binds it to the log context and writes one access line per request."""

    def __init__(
        self, app: ASGIApp, *, service: str, observe: Callable[[Scope, int, float], None] | None = None
    ) -> None:
        self.app = app
        self.service = service
        # The metrics hook: it needs the same status and duration, so it rides on this middleware's wrapper.
        self.observe = observe
        self.log = structlog.get_logger("access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        request_id = request_id_from(headers)
        if request_id is None:
            request_id = os.urandom(16).hex().encode()
            headers = [(k, v) for k, v in headers if k != REQUEST_ID_HEADER]
            headers.append((REQUEST_ID_HEADER, request_id))
            scope["headers"] = headers
        rid = request_id.decode()
        structlog.contextvars.bind_contextvars(request_id=rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = [(k, v) for k, v in message.get("headers", ()) if k.lower() != REQUEST_ID_HEADER]
                out.append((REQUEST_ID_HEADER, request_id))
                message["headers"] = out
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            if self.observe is not None:
                self.observe(scope, status, elapsed)
            quiet = status in QUIET_STATUSES and scope["path"] in QUIET_PATHS
            (self.log.debug if quiet else self.log.info)(
                "request",
                service=self.service,
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 3),
            )
            structlog.contextvars.unbind_contextvars("request_id")
