"""A small pooled HTTP/1.1 client on asyncio and httptools: the hot path to upstreams (gateway, chatd).

httpx stays for everything else; here every microsecond per request counts, and bytes must pass untouched
(no decompression, no injected headers, no cookie jar). One `UpstreamPool` per upstream URL.

Two lifetimes, split as uvicorn splits `HttpToolsProtocol` from `RequestResponseCycle`: a `_Connection` is the
socket, the parser and keep-alive, living across requests; an `_Exchange` is one request/response cycle on it.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self, cast
from urllib.parse import urlsplit

import httptools

from shared.errors import ErrorCode

Headers = list[tuple[bytes, bytes]]

# Past this many buffered body bytes the upstream socket stops being read until the client catches up.
READ_HIGH_WATER = 256 * 1024
DEFAULT_CONNECT_TIMEOUT_SECS = 5.0
DEFAULT_MAX_IDLE = 128
# Open connections per upstream (per process); requests beyond it queue for one, as httpx's Limits.
DEFAULT_MAX_CONNECTIONS = 256
# Below uvicorn's 5 s keep-alive default, so an idle connection is dropped here before the upstream drops it
# under a request in flight.
IDLE_TTL_SECS = 4.0


class UpstreamError(Exception):
    """The upstream could not give a (complete) response; `code` is the stack's error code for it."""

    code: ErrorCode = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    """No connection could be made."""

    code: ErrorCode = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    """No response headers within the deadline."""

    code: ErrorCode = "upstream_timeout"


class UpstreamBroken(UpstreamError):
    """The connection failed or the upstream broke the protocol after the request was sent."""

    code: ErrorCode = "upstream_error"


class _Exchange:
    """One request/response cycle: what has arrived of the response, and who waits for more."""

    __slots__ = (
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

    def __init__(self, conn: _Connection, *, head_request: bool) -> None:
        self.conn = conn
        self.head_request = head_request
        self.body_unsent = False
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
        self.keep_alive = keep_alive and not _says_close(self.headers)
        if self.head_request:
            # A HEAD response has no body whatever its Content-Length says; the parser cannot be told so,
            # so this connection is not reused.
            self.complete = True
            self.keep_alive = False
        if not self.headers_ready.done():
            self.headers_ready.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
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
                data = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
                self.chunks.clear()
                self.buffered = 0
                if self.reading_paused:
                    self.reading_paused = False
                    self.conn.resume_reading()
                return data
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            self.waiter = self.conn.loop.create_future()
            await self.waiter

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.chunks and not self.body_unsent


def _says_close(headers: Headers) -> bool:
    return any(name == b"connection" and b"close" in value.lower() for name, value in headers)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: the socket, the response parser, write flow control. Outlives its exchanges."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: UpstreamPool) -> None:
        self.loop = loop
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.counted = True  # holds one of the pool's connection slots until it closes
        self.idle_since = 0.0
        self.reused = False
        self.received = 0  # response bytes of the current exchange
        self.exchange: _Exchange | None = None
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None

    def begin(self, *, head_request: bool) -> _Exchange:
        self.received = 0
        self.exchange = _Exchange(self, head_request=head_request)
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

    async def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            error = self.exchange.error if self.exchange is not None else None
            raise error or UpstreamBroken("upstream closed the connection while receiving the request")
        self.transport.write(data)
        if self._write_paused:
            self._drain = self.loop.create_future()
            await self._drain

    def close(self) -> None:
        self._closed()
        if self.transport is not None:
            self.transport.close()

    def _closed(self) -> None:
        self.closed = True
        if self.counted:
            self.counted = False
            self.pool._slot_freed()


class UpstreamResponse:
    __slots__ = ("_exchange", "_pool", "_released", "headers", "status")

    def __init__(self, pool: UpstreamPool, exchange: _Exchange) -> None:
        self._pool = pool
        self._exchange = exchange
        self._released = False
        self.status = exchange.status
        self.headers = exchange.headers

    @property
    def complete(self) -> bool:
        """True when the whole body has arrived (what `read` returns next is all that is left)."""
        return self._exchange.complete

    async def read(self) -> bytes | None:
        return await self._exchange.read()

    async def read_all(self) -> bytes:
        """The whole body (for callers that do not stream it), then the connection goes back to the pool."""
        try:
            chunks = []
            while (chunk := await self._exchange.read()) is not None:
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            self.release()

    def release(self) -> None:
        """Return the connection to the pool if the exchange finished cleanly, else close it."""
        if not self._released:
            self._released = True
            self._pool.release(self._exchange)


class UpstreamPool:
    """Connections to one upstream: at most `max_connections` open, up to `max_idle` of them kept for reuse.

    `async with UpstreamPool(url) as pool:` closes the idle connections on exit.
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_idle: int = DEFAULT_MAX_IDLE,
        connect_timeout_secs: float = DEFAULT_CONNECT_TIMEOUT_SECS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f'expected an http:// or https:// upstream URL, got "{url}"')
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        self.host_header = parts.netloc.rpartition("@")[2].encode()
        self.path_prefix = parts.path.rstrip("/").encode()
        self.max_connections = max_connections
        self.max_idle = min(max_idle, max_connections)
        self.connect_timeout_secs = connect_timeout_secs
        self.open = 0  # connections holding a slot: in use, idle or being opened
        self._idle: deque[_Connection] = deque()
        # Requests queued for a slot: each gets a released connection, or None meaning "open one, the slot is yours".
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # slots

    def _slot_freed(self) -> None:
        """A connection closed: its slot goes to the first queued request, else back to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.open -= 1

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_TTL_SECS:
                return conn
            conn.close()
        return None

    async def _acquire(self, wait_secs: float, *, reuse: bool = True) -> _Connection | None:
        """An idle connection, or None when the caller may open one (it holds a slot then); queues at the cap.

        `reuse=False` asks for a slot only, for a fresh connection (an idle one is closed to make room).
        """
        if reuse:
            conn = self._take_idle()
            if conn is not None:
                return conn
        elif self.open >= self.max_connections and self._idle:
            self._idle.popleft().close()
        if self.open < self.max_connections:
            self.open += 1
            return None
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(wait_secs):
                given = await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection or a slot just as this request gave up: pass it on.
                self._pass_on(waiter.result())
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(
                    f"all {self.max_connections} connections to {self.url} busy for {wait_secs:g}s"
                ) from None
            raise
        if given is not None and not reuse:
            given.close()  # its slot goes to the next in the queue, or back to the pool
            return await self._acquire(wait_secs, reuse=False)
        return given

    def _pass_on(self, given: _Connection | None) -> None:
        if given is None:
            self._slot_freed()
        else:
            self._park(given)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_secs):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self), self.host, self.port, ssl=self.ssl
                )
        except BaseException as exc:
            self._slot_freed()
            error = _connect_error(self.url, exc)
            if error is None:
                raise
            raise error from exc
        return conn

    # requests

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: Headers,
        body: bytes | AsyncIterator[bytes],
        *,
        header_timeout_secs: float,
    ) -> UpstreamResponse:
        """Send one request; return once the response headers are in. The caller reads the body and releases.

        A reused connection that fails before any response byte arrived (the upstream closed it as it was
        reused) is replaced by a fresh one once, when the body can be sent again (bytes, not a stream).
        """
        head = _request_head(method, self.path_prefix + target, headers)
        conn = await self._acquire(header_timeout_secs)
        if conn is not None and isinstance(body, bytes):
            try:
                return await self._exchange(conn, method, head, body, header_timeout_secs)
            except UpstreamBroken:
                if conn.received:
                    raise
                # Not one response byte: the upstream closed this idle connection as it was reused.
            conn = await self._acquire(header_timeout_secs, reuse=False)
        if conn is None:
            conn = await self._connect()
        return await self._exchange(conn, method, head, body, header_timeout_secs)

    async def _exchange(
        self,
        conn: _Connection,
        method: bytes,
        head: bytes,
        body: bytes | AsyncIterator[bytes],
        header_timeout_secs: float,
    ) -> UpstreamResponse:
        exchange = conn.begin(head_request=method == b"HEAD")
        try:
            if isinstance(body, bytes):
                await conn.write(head + body)
            else:
                await conn.write(head)
                await self._send_stream(conn, exchange, body)
            if not exchange.headers_ready.done():
                # A timer handle rather than asyncio.timeout: this runs once per forwarded request.
                timer = conn.loop.call_later(header_timeout_secs, exchange.header_timeout, header_timeout_secs)
                try:
                    await exchange.headers_ready
                finally:
                    timer.cancel()
        except BaseException:
            conn.close()
            raise
        return UpstreamResponse(self, exchange)

    @staticmethod
    async def _send_stream(conn: _Connection, exchange: _Exchange, body: AsyncIterator[bytes]) -> None:
        """Send a streamed body; stop early, without failing, if the upstream has already answered (a 413)."""
        try:
            async for chunk in body:
                await conn.write(chunk)
                if exchange.headers_ready.done():
                    break
            else:
                return
        except UpstreamBroken:
            if not exchange.headers_ready.done() or exchange.headers_ready.exception() is not None:
                raise
        exchange.body_unsent = True  # the rest of the body was never sent: the connection cannot carry another

    def release(self, exchange: _Exchange) -> None:
        conn = exchange.conn
        conn.exchange = None
        if exchange.reusable and not conn.closed:
            self._park(conn)
        else:
            conn.close()

    def _park(self, conn: _Connection) -> None:
        """A connection ready for another request: to the first queued request, else idle (or closed)."""
        conn.reused = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if len(self._idle) < self.max_idle:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _connect_error(url: str, exc: BaseException) -> UpstreamError | None:
    if isinstance(exc, TimeoutError):
        return UpstreamUnavailable(f"connecting to {url} timed out")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return UpstreamUnavailable(f"cannot connect to {url}: TLS certificate verify failed: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return UpstreamUnavailable(f"cannot connect to {url}: TLS error: {exc.reason}")
    if isinstance(exc, OSError):
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return UpstreamUnavailable(f"cannot connect to {url}: {reason}")
    return None


def _request_head(method: bytes, target: bytes, headers: Headers) -> bytes:
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def chunked(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Frame a body of unknown length with Transfer-Encoding: chunked."""

    async def frames() -> AsyncIterator[bytes]:
        async for chunk in body:
            if chunk:
                yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
        yield b"0\r\n\r\n"

    return frames()
