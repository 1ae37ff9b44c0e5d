"""HTTP/1.1 requires exactly one Host header (RFC 9112 §3.2): a request with none or several is a 400."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import send_error


class HostHeaderMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("http_version") == "1.1":
            count = 0
            for name, _ in scope["headers"]:
                if name == b"host":
                    count += 1
            if count != 1:
                # Two Hosts let a proxy and the server behind it disagree on which one the request is for.
                found = "none" if count == 0 else str(count)
                await send_error(
                    send, "invalid_request", f"an HTTP/1.1 request needs exactly one Host header, got {found}"
                )
                return
        await self.app(scope, receive, send)
