"""One connection to an upstream and one request/response cycle on it, split as uvicorn splits
`HttpToolsProtocol` (socket, parser, keep-alive: lives across requests) from `RequestResponseCycle` (one exchange).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools

from shared.upstream.errors import UpstreamBroken, UpstreamError, UpstreamTimeout

Headers = list[tuple[bytes, bytes]]

# Past this many buffered body bytes the upstream socket stops being read until the client catches up,
# and it is read again once the buffer is down to READ_LOW_WATER.
READ_HIGH_WATER = 256 * 1024
READ_LOW_WATER = READ_HIGH_WATER // 4
# Buffered chunks up to this many bytes are handed on joined; past it, one by one.
JOIN_MAX_BYTES = 64 * 1024


class Exchange:
    """One request/response cycle: what has arrived of the response, and who waits for more."""

    __slots__ = (
        "body_received",
        "body_unsent",
        "buffered",
        "chunks",
        "complete",
        "conn",
        "error",
        "head_request",
        "headers",
        "headers_ready",
        "keep_alive",
        "reading_paused",
        "status",
        "waiter",
    )

    def __init__(self, conn: Connection, *, head_request: bool) -> None:
        self.conn = conn
        self.head_request = head_request
        self.body_unsent = False
        self.body_received = 0  # body bytes parsed so far
        self.status = 0
        self.headers: Headers = []
        self.headers_ready: asyncio.Future[None] = conn.loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: UpstreamError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.reading_paused = False

    def on_headers_complete(self, status: int, keep_alive: bool) -> None:
        self.status = status
        self.keep_alive = keep_alive  # the parser's verdict: HTTP version and Connection: close
        if self.head_request:
            # A HEAD response has no body whatever its Content-Length says; the parser cannot be told so,
            # so this connection is not reused.
            self.complete = True
            self.keep_alive = False
        if not self.headers_ready.done():
            self.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.body_received += len(body)
        self.buffered += len(body)
        if self.buffered > READ_HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.conn.pause_reading()
        self.wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        if not self.headers_ready.done():
            self.headers_ready.set_exception(error)
            self.headers_ready.exception()  # retrieved here so an abandoned future logs nothing
        self.wake()

    def header_timeout(self, seconds: float) -> None:
        if not self.headers_ready.done():
            self.headers_ready.set_exception(UpstreamTimeout(f"no response headers within {seconds:g}s"))

    async def read(self) -> bytes | None:
        """The body bytes that have arrived (waiting for some), or None once the response is complete."""
        while True:
            if self.chunks:
                if self.complete or self.buffered <= JOIN_MAX_BYTES:
                    # All that has arrived, as one piece: a caller that sees `complete` after this read has the
                    # whole rest of the body, and many small chunks (a stream of events) go out as one message.
                    data = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
                    self.chunks.clear()
                else:
                    # A large body in flight goes a chunk at a time: joining would copy every byte once more.
                    data = self.chunks.popleft()
                self.buffered -= len(data)
                if self.reading_paused and self.buffered <= READ_LOW_WATER:
                    self.reading_paused = False
                    self.conn.resume_reading()
                return data
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            self.waiter = self.conn.loop.create_future()
            await self.waiter

    def detach_rest(self, min_bytes: int) -> tuple[int, int] | None:
        """Hand the rest of the body to be moved by the kernel: (the socket's descriptor, bytes still to come),
        with the socket no longer read here. None when that cannot be: a chunked or length-less body, bytes still
        buffered here (read them first), a response already complete or failed, or fewer than `min_bytes` left."""
        if self.chunks or self.complete or self.error is not None or self.conn.transport is None:
            return None
        length = _content_length(self.headers)
        if length is None or length - self.body_received < min_bytes:
            return None
        self.conn.pause_reading()
        return self.conn.transport.get_extra_info("socket").fileno(), length - self.body_received

    def reattach(self, moved: int, expected: int) -> None:
        """After `detach_rest`: `moved` of the `expected` bytes were taken from the socket by someone else."""
        self.conn.received += moved
        self.body_received += moved
        if moved != expected:
            return  # not complete: release() closes the connection
        self.complete = True
        # The parser still waits for the bytes it never saw; the next exchange needs one in a clean state.
        self.conn.parser = httptools.HttpResponseParser(self.conn)
        self.conn.resume_reading()

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.chunks and not self.body_unsent


class Connection(asyncio.Protocol):
    """One keep-alive connection: the socket, the response parser, write flow control. Outlives its exchanges."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_close: Callable[[], None]) -> None:
        self.loop = loop
        self.on_close = on_close  # called once, when the connection closes: its pool slot is free
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.counted = True
        self.idle_since = 0.0
        self.reused = False
        self.received = 0  # response bytes of the current exchange
        self.exchange: Exchange | None = None
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None

    def begin(self, *, head_request: bool) -> Exchange:
        self.received = 0
        self.exchange = Exchange(self, head_request=head_request)
        return self.exchange

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but they implement it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.exchange is not None:
                self.exchange.fail(UpstreamBroken(f"malformed response from upstream: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()
        if self.exchange is not None and not self.exchange.complete:
            self.exchange.fail(UpstreamBroken("upstream closed the connection before the response was complete"))
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(UpstreamBroken("upstream closed the connection while receiving the request"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # httptools callbacks, handed to the exchange in flight

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.exchange is not None:
            self.exchange.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        exchange = self.exchange
        if exchange is None:
            return
        if 100 <= status < 200 and status != 101:
            exchange.headers = []  # informational (100 Continue): the real response follows
            return
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)  # an early answer: stop waiting to send more of the body
        exchange.on_headers_complete(status, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.on_body(body)

    def on_message_complete(self) -> None:
        # status 0: the end of an informational response
        if self.exchange is not None and self.exchange.status:
            self.exchange.on_message_complete()

    # used by the pool and the exchange

    def pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()

    async def write(self, data: bytes, stall_secs: float) -> None:
        """Send `data`; if the upstream stops reading, wait at most `stall_secs` for it to take more."""
        if self.closed or self.transport is None:
            error = self.exchange.error if self.exchange is not None else None
            raise error or UpstreamBroken("upstream closed the connection while receiving the request")
        self.transport.write(data)
        if self._write_paused:
            self._drain = self.loop.create_future()
            try:
                async with asyncio.timeout(stall_secs):
                    await self._drain
            except TimeoutError:
                raise UpstreamTimeout(f"upstream read none of the request body for {stall_secs:g}s") from None

    def close(self) -> None:
        self._closed()
        if self.transport is not None:
            self.transport.close()

    def _closed(self) -> None:
        self.closed = True
        if self.counted:
            self.counted = False
            self.on_close()


def _content_length(headers: Headers) -> int | None:
    """The body's length when the response declares one and is not chunked (a message with both is never detached)."""
    length = None
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value)  # the parser has checked it is a number
    return length
