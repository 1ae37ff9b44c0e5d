"""A small pooled HTTP/1.1 client on asyncio and httptools: the hot path to upstreams (gateway, chatd).

httpx stays for everything else; here every microsecond per request counts, and bytes must pass untouched
(no decompression, no injected headers, no cookie jar). One `UpstreamPool` per upstream URL.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

from shared.errors import ErrorCode

Headers = list[tuple[bytes, bytes]]

# Past this many buffered body bytes the upstream socket stops being read until the client catches up.
READ_HIGH_WATER = 256 * 1024
DEFAULT_CONNECT_TIMEOUT_SECS = 5.0
DEFAULT_MAX_IDLE = 128
# Below uvicorn's 5 s keep-alive default, so an idle connection is dropped here before the upstream drops it
# under a request in flight.
IDLE_TTL_SECS = 4.0
# Methods Go's transport also retries after a reused connection fails before any response byte arrived.
REPLAYABLE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})


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


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses responses as bytes arrive and hands the body over chunk by chunk."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self.begin(head_request=False)

    def begin(self, *, head_request: bool) -> None:
        self.head_request = head_request
        self.body_unsent = False
        self.status = 0
        self.headers: Headers = []
        self.headers_ready: asyncio.Future[None] = self.loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading_paused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but they implement it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamBroken(f"malformed response from upstream: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete:
            self._fail(UpstreamBroken("upstream closed the connection before the response was complete"))
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(UpstreamBroken("upstream closed the connection while receiving the request"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.headers = []  # informational (100 Continue): the real response follows
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)  # an early answer: stop waiting to send more of the body
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
        if self.buffered > READ_HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:
            return  # the end of an informational response
        self.complete = True
        self._wake()

    # used by the pool and the response

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        if not self.headers_ready.done():
            self.headers_ready.set_exception(error)
            self.headers_ready.exception()  # retrieved here so an abandoned future logs nothing
        self._wake()

    def header_timeout(self, seconds: float) -> None:
        if not self.headers_ready.done():
            self.headers_ready.set_exception(UpstreamTimeout(f"no response headers within {seconds:g}s"))

    async def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise self.error or UpstreamBroken("upstream closed the connection while receiving the request")
        self.transport.write(data)
        if self._write_paused:
            self._drain = self.loop.create_future()
            await self._drain

    async def read(self) -> bytes | None:
        """The body bytes that have arrived (waiting for some), or None once the response is complete."""
        while True:
            if self.chunks:
                data = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
                self.chunks.clear()
                self.buffered = 0
                if self._reading_paused and self.transport is not None:
                    self._reading_paused = False
                    self.transport.resume_reading()
                return data
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            self._waiter = self.loop.create_future()
            await self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamResponse:
    __slots__ = ("_conn", "_pool", "_released", "headers", "status")

    def __init__(self, pool: UpstreamPool, conn: _Connection) -> None:
        self._pool = pool
        self._conn = conn
        self._released = False
        self.status = conn.status
        self.headers = conn.headers

    @property
    def complete(self) -> bool:
        """True when the whole body has arrived (what `read` returns next is all that is left)."""
        return self._conn.complete

    async def read(self) -> bytes | None:
        return await self._conn.read()

    async def read_all(self) -> bytes:
        """The whole body (for callers that do not stream it), then the connection goes back to the pool."""
        try:
            chunks = []
            while (chunk := await self._conn.read()) is not None:
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            self.release()

    def release(self) -> None:
        """Return the connection to the pool if the exchange finished cleanly, else close it."""
        if not self._released:
            self._released = True
            self._pool.release(self._conn)


class UpstreamPool:
    def __init__(
        self,
        url: str,
        *,
        max_idle: int = DEFAULT_MAX_IDLE,
        connect_timeout_secs: float = DEFAULT_CONNECT_TIMEOUT_SECS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f'expected an http:// or https:// upstream URL, got "{url}"')
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        self.host_header = parts.netloc.rpartition("@")[2].encode()
        self.path_prefix = parts.path.rstrip("/").encode()
        self.max_idle = max_idle
        self.connect_timeout_secs = connect_timeout_secs
        self._idle: deque[_Connection] = deque()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_secs):
                _, conn = await loop.create_connection(lambda: _Connection(loop), self.host, self.port, ssl=self.ssl)
        except TimeoutError:
            raise UpstreamUnavailable(f"connecting to {self.url} timed out") from None
        except ssl.SSLCertVerificationError as exc:
            reason = f"TLS certificate verify failed: {exc.verify_message}"
            raise UpstreamUnavailable(f"cannot connect to {self.url}: {reason}") from None
        except ssl.SSLError as exc:
            raise UpstreamUnavailable(f"cannot connect to {self.url}: TLS error: {exc.reason}") from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise UpstreamUnavailable(f"cannot connect to {self.url}: {reason}") from None
        return conn

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_TTL_SECS:
                return conn
            conn.close()
        return None

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: Headers,
        body: bytes | AsyncIterator[bytes],
        *,
        header_timeout_secs: float,
    ) -> UpstreamResponse:
        """Send one request; return once the response headers are in. The caller reads the body and releases."""
        head = _request_head(method, self.path_prefix + target, headers)
        conn = self._take_idle()
        if conn is not None and isinstance(body, bytes) and method in REPLAYABLE_METHODS:
            try:
                return await self._exchange(conn, method, head, body, header_timeout_secs)
            except UpstreamBroken:
                if conn.status:
                    raise
                # The upstream closed the idle connection as it was reused; a safe request is sent again.
        elif conn is not None:
            return await self._exchange(conn, method, head, body, header_timeout_secs)
        return await self._exchange(await self._connect(), method, head, body, header_timeout_secs)

    async def _exchange(
        self,
        conn: _Connection,
        method: bytes,
        head: bytes,
        body: bytes | AsyncIterator[bytes],
        header_timeout_secs: float,
    ) -> UpstreamResponse:
        conn.begin(head_request=method == b"HEAD")
        try:
            if isinstance(body, bytes):
                await conn.write(head + body)
            else:
                await conn.write(head)
                await self._send_stream(conn, body)
            if not conn.headers_ready.done():
                # A timer handle rather than asyncio.timeout: this runs once per forwarded request.
                timer = conn.loop.call_later(header_timeout_secs, conn.header_timeout, header_timeout_secs)
                try:
                    await conn.headers_ready
                finally:
                    timer.cancel()
        except BaseException:
            conn.close()
            raise
        return UpstreamResponse(self, conn)

    @staticmethod
    async def _send_stream(conn: _Connection, body: AsyncIterator[bytes]) -> None:
        """Send a streamed body; stop early, without failing, if the upstream has already answered (a 413)."""
        try:
            async for chunk in body:
                await conn.write(chunk)
                if conn.headers_ready.done():
                    break
            else:
                return
        except UpstreamBroken:
            if not conn.headers_ready.done() or conn.headers_ready.exception() is not None:
                raise
        conn.body_unsent = True  # the rest of the body was never sent: the connection cannot carry another request

    def release(self, conn: _Connection) -> None:
        reusable = conn.complete and conn.keep_alive and not conn.closed and not conn.chunks and not conn.body_unsent
        if reusable and len(self._idle) < self.max_idle:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


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
