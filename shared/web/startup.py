"""Startup failures an operator can act on: one line in the log and a non-zero exit, never a traceback.

Every service app has this in front (`service_app`), so a `StartupFailed` raised by any lifespan — a missing bucket,
a damaged log, an engine that cannot start — is one line naming the service and the cause.
"""

from __future__ import annotations

import sys

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import StartupFailed


class StartupErrorMiddleware:
    """Starlette reports a failed lifespan with the whole traceback; for StartupFailed, uvicorn gets just the line.

    uvicorn logs that line, then "Application startup failed. Exiting.", and `lakehouse serve` exits 3 (uvicorn's
    status for a failed startup).
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_one_line(message: Message) -> None:
            # Starlette sends "startup.failed" from inside its `except` block: the exception is the one handled now.
            failure = sys.exc_info()[1]
            if message["type"] == "lifespan.startup.failed" and isinstance(failure, StartupFailed):
                message = {**message, "message": f"{self.service}: {failure}"}
            await send(message)

        await self.app(scope, receive, send_one_line)
