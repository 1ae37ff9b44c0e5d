"""The one error shape of the stack: {"error": {"code": ..., "message": ...}} with the status the code implies."""

from __future__ import annotations

import json
from typing import Literal

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

ErrorCode = Literal[
    "invalid_request",
    "read_only",
    "unauthorized",
    "forbidden",
    "not_found",
    "provider_not_registered",
    "method_not_allowed",
    "request_timeout",
    "already_exists",
    "schema_mismatch",
    "version_conflict",
    "key_conflict",
    "precondition_failed",
    "payload_too_large",
    "unsupported_media_type",
    "range_not_satisfiable",
    "rate_limited",
    "budget_exceeded",
    "headers_too_large",
    "internal_error",
    "corrupt_manifest",
    "not_implemented",
    "upstream_unavailable",
    "upstream_error",
    "service_unavailable",
    "upstream_timeout",
    "query_timeout",
]

# The one table of codes and the status each implies; a test keeps it equal to ErrorCode.
STATUS_BY_CODE: dict[ErrorCode, int] = {
    "invalid_request": 400,
    "read_only": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "provider_not_registered": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "already_exists": 409,
    "schema_mismatch": 409,
    "version_conflict": 409,
    "key_conflict": 409,
    "precondition_failed": 412,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "range_not_satisfiable": 416,
    "rate_limited": 429,
    "budget_exceeded": 429,
    "headers_too_large": 431,
    "internal_error": 500,
    "corrupt_manifest": 500,
    "not_implemented": 501,
    "upstream_unavailable": 502,
    "upstream_error": 502,
    "service_unavailable": 503,
    "upstream_timeout": 504,
    "query_timeout": 504,
}

# Starlette raises HTTPException for unrouted paths and wrong methods; these give them our codes.
CODE_BY_STATUS: dict[int, ErrorCode] = {404: "not_found", 405: "method_not_allowed", 400: "invalid_request"}


class LakehouseError(Exception):
    """An error a handler raises to answer with the standard error body."""

    def __init__(self, code: ErrorCode, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS_BY_CODE[code]
        self.headers = headers or {}


def error_body(code: ErrorCode, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def error_response(code: ErrorCode, message: str, *, headers: dict[str, str] | None = None) -> Response:
    return Response(
        error_body(code, message),
        status_code=STATUS_BY_CODE[code],
        media_type="application/json",
        headers=headers,
    )


async def send_error(send: Send, code: ErrorCode, message: str, headers: dict[str, str] | None = None) -> None:
    """Answer from pure ASGI code (middleware, the proxy) without building a Response."""
    body = error_body(code, message)
    extra = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": STATUS_BY_CODE[code],
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def handle_lakehouse_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LakehouseError)
    return error_response(exc.code, exc.message, headers=exc.headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = CODE_BY_STATUS.get(exc.status_code, "invalid_request")
    message = f"no route for {request.method} {request.url.path}" if exc.status_code in (404, 405) else exc.detail
    response = error_response(code, message, headers=dict(exc.headers or {}))
    response.status_code = exc.status_code
    return response


# nginx's "client closed request": what the access line and the metrics say of a request whose client went away.
CLIENT_CLOSED_REQUEST = 499


async def handle_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client went away mid-request (a streamed upload cut off): an event, not a fault, so no trace. Nobody
    # reads this answer; it is what the access line and the metrics record.
    structlog.get_logger("http").info("client went away mid-request", path=request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log (ServerErrorMiddleware logs it); the client gets no internals.
    return error_response("internal_error", "internal error; see the service log")


class StartupFailed(Exception):
    """Raised from a lifespan when the service cannot serve (its bucket is missing, its log is damaged): the message
    is the one line the operator sees before the service exits non-zero (shared/web/startup.py)."""
