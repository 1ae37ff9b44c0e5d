"""The outermost middleware of every app: whatever raises, anywhere (middleware included), the client gets the JSON
500 and the log gets the rendered stack trace, once."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import send_error


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        self.log = structlog.get_logger("guard")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan failures are uvicorn's to report
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            self.log.error(
                "unhandled exception",
                service=self.service,
                method=scope.get("method"),
                path=scope.get("path"),
                exc_info=exc,
            )
            if not started:
                await send_error(send, "internal_error", "internal error; see the service log")
            # Otherwise an answer is already on its way (Starlette's 500, or a half-sent body): returning lets
            # uvicorn close a response it sees as incomplete, so the client never takes it for a whole one.
