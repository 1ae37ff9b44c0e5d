"""uvicorn's httptools protocol with the limits it lacks: request-head size and field count, a head timeout, a
connection cap, and JSON bodies on the answers the server gives before any app runs.

uvicorn bounds none of these: one 64 MB header is accumulated and handed to the app, and a connection that never
finishes its headers is held forever. Every server the runner starts (gateway and services) uses this class.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httptools
import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from shared.errors import STATUS_BY_CODE, ErrorCode, error_body
from shared.server.splice import SPLICE, Splicer

# How long a refused connection is drained before closing, so the client reads the answer instead of a reset.
LINGER_SECS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    max_header_bytes: int = 64 << 10  # the request line and every header line together
    max_header_count: int = 100
    header_timeout_secs: float = 10.0  # from accept, or from the previous response on a kept-alive connection
    keepalive_timeout_secs: float = 5.0  # idle time allowed between requests
    max_connections: int = 2048  # per process


class HeadTooLarge(Exception):
    """Raised from a parser callback; httptools re-raises it as the __context__ of HttpParserCallbackError."""


def error_bytes(code: ErrorCode, message: str) -> bytes:
    body = error_body(code, message)
    return b"".join(
        [
            STATUS_LINE[STATUS_BY_CODE[code]],
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class LimitedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus `limits`; `protocol_class(limits)` makes the subclass uvicorn instantiates."""

    limits = ServerLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.log = structlog.get_logger("http")
        self.head_bytes = 0  # bytes received since the current request's head began
        self.head_fields = 0
        self.head_size = 0  # the parsed head: URL, names and values
        self.awaiting_head = True
        self.requests_seen = 0
        self.head_timer: asyncio.TimerHandle | None = None
        self.refused = False
        self.registered = False  # in server_state.connections (a connection refused at accept never is)

    # Connection lifecycle

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Refused before it joins `connections`, so the cap cannot be pushed up by the refused themselves.
            self.transport = transport
            self.log.warning("connection refused: too many connections", limit=self.limits.max_connections)
            self.refuse("service_unavailable", "too many connections to this server; retry shortly")
            return
        super().connection_made(transport)
        self.registered = True
        self.arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_head_timer()
        if self.registered:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # draining a refused connection
        self._unset_keepalive_if_required()
        if self.awaiting_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self.refuse("headers_too_large", str(exc.__context__))
            else:
                self.refuse("invalid_request", f"malformed HTTP request: {exc}")
            return
        # The parser keeps an unfinished head in memory: cap it while it grows, not when it is complete.
        if self.awaiting_head and self.head_bytes > self.limits.max_header_bytes:
            self.refuse("headers_too_large", self.head_bytes_message())

    def head_bytes_message(self) -> str:
        return f"request headers larger than {self.limits.max_header_bytes} bytes"

    # Parser callbacks

    def on_message_begin(self) -> None:
        self.head_fields = 0
        self.head_size = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self.grow_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_fields += 1
        if self.head_fields > self.limits.max_header_count:
            raise HeadTooLarge(f"more than {self.limits.max_header_count} request header fields")
        self.grow_head(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def grow_head(self, size: int) -> None:
        # A head that arrived whole in one read is measured here; one still arriving, in data_received.
        self.head_size += size
        if self.head_size > self.limits.max_header_bytes:
            raise HeadTooLarge(self.head_bytes_message())

    def on_headers_complete(self) -> None:
        self.awaiting_head = False
        self.requests_seen += 1
        self.cancel_head_timer()
        super().on_headers_complete()
        cycle = self.cycle
        # No cycle of this request's own: an upgrade (websocket) took it. TLS bytes cannot be spliced.
        if cycle is not None and cycle.scope is self.scope and self.transport.get_extra_info("sslcontext") is None:
            self.scope["extensions"] = {SPLICE: {"splice": Splicer(cycle)}}
        if cycle is not None and cycle.waiting_for_100_continue:
            close_if_body_unasked(cycle)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.awaiting_head = True
        self.head_bytes = 0
        # A response sent before its request body ended: the next head's clock starts now.
        if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
            self.arm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.awaiting_head and not self.pipeline and not self.transport.is_closing():
            self.arm_head_timer()

    # Refusals and timers

    def refuse(self, code: ErrorCode, message: str) -> None:
        """Answer `code` and close: a half-close first, then a short drain, so the client reads the answer."""
        self.refused = True
        self.cancel_head_timer()
        self._unset_keepalive_if_required()
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app is mid-request: it sees a disconnect and its sends become no-ops from here on.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                transport.close()  # an answer is half-written; a clean error is no longer possible
                return
        transport.write(error_bytes(code, message))
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(LINGER_SECS, transport.close)
        else:
            transport.close()

    def arm_head_timer(self) -> None:
        self.cancel_head_timer()
        self.head_timer = self.loop.call_later(self.limits.header_timeout_secs, self.head_timed_out)

    def cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.awaiting_head:
            return
        if self.requests_seen and not self.head_bytes:
            # An idle kept-alive connection: an unasked-for 408 could race the client's next request.
            self.transport.close()
            return
        seconds = f"{self.limits.header_timeout_secs:g}"
        self.refuse("request_timeout", f"request headers not received within {seconds}s")


def close_if_body_unasked(cycle: RequestResponseCycle) -> None:
    """An answer to `Expect: 100-continue` given before the app asked for the body closes the connection.

    The client may then send the body anyway or never (botocore sends none after a refusal): either way the bytes
    that follow on this connection are not a request head, and uvicorn would parse the next request from the middle
    of them. RFC 9110 §10.1.1 lets the server close instead; the client opens a new connection.
    """
    send = cycle.send

    async def send_closing(message: Any) -> None:
        if message["type"] == "http.response.start" and cycle.waiting_for_100_continue:
            cycle.keep_alive = False
        await send(message)

    cycle.send = send_closing  # type: ignore[method-assign]


def protocol_class(limits: ServerLimits) -> type[LimitedHttpProtocol]:
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})
