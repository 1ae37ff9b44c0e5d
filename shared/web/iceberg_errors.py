"""Errors under the Iceberg REST catalog's prefix in the shape its spec gives (ErrorModel), whoever answers.

The catalog's own handlers answer in that shape already. What answers before them (auth's 401, the allow-list's 403,
an unrouted path, a body too large, the gateway finding catalogd down) speaks the stack's shape
`{"error": {"code": "<our code>", "message"}}`; this middleware rewrites exactly those bodies to
`{"error": {"message", "type", "code": <status>}}`, so an Iceberg client (pyiceberg, Spark, Trino, DuckDB) reads
every refusal in its own terms. It imports nothing of the services.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ICEBERG_PREFIX = "/v1/iceberg"

# The exception type an Iceberg client expects for each status (the spec's ErrorModel examples); "type" is what
# clients map to their exceptions, "code" repeats the status.
TYPE_BY_STATUS: dict[int, str] = {
    400: "BadRequestException",
    401: "NotAuthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    405: "MethodNotAllowedException",
    406: "UnsupportedOperationException",
    409: "CommitFailedException",
    413: "BadRequestException",
    415: "BadRequestException",
    419: "AuthenticationTimeoutException",
    429: "TooManyRequestsException",
    500: "InternalServerError",
    501: "NotImplementedException",
    502: "ServiceUnavailableException",
    503: "ServiceUnavailableException",
    504: "ServiceUnavailableException",
}


def iceberg_error_body(status: int, kind: str, message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()


def _ours(body: bytes) -> str | None:
    """The message of a body in the stack's own error shape; None for anything else (already Iceberg's, not JSON)."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str) or "type" in error:
        return None
    message = error.get("message")
    return message if isinstance(message, str) else ""


class IcebergErrorShape:
    """Pure ASGI: under `prefix`, an error response in the stack's shape leaves in Iceberg's ErrorModel."""

    def __init__(self, app: ASGIApp, prefix: str = ICEBERG_PREFIX) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        body = bytearray()

        async def reshaping(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                json_type = any(
                    k == b"content-type" and v.startswith(b"application/json") for k, v in message["headers"]
                )
                if message["status"] >= 400 and json_type:
                    held = message  # the body decides whether it is rewritten
                    return
                await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            status: int = held["status"]
            ours = _ours(bytes(body))
            out = (
                bytes(body)
                if ours is None
                else iceberg_error_body(status, TYPE_BY_STATUS.get(status, "RESTException"), ours)
            )
            headers = [(k, v) for k, v in held["headers"] if k != b"content-length"]
            await send({**held, "headers": [*headers, (b"content-length", str(len(out)).encode())]})
            await send({"type": "http.response.body", "body": out})

        await self.app(scope, receive, reshaping)
