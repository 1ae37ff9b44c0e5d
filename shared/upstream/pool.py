"""Connections to one upstream: a cap with a queue, keep-alive reuse, one retry for a stale reused connection."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from shared.upstream.connection import Connection, Exchange, Headers
from shared.upstream.errors import UpstreamBroken, UpstreamError, UpstreamTimeout, UpstreamUnavailable

DEFAULT_CONNECT_TIMEOUT_SECS = 5.0
DEFAULT_MAX_IDLE = 128
# Open connections per upstream (per process); requests beyond it queue for one, as httpx's Limits.
DEFAULT_MAX_CONNECTIONS = 256
# Below uvicorn's 5 s keep-alive default, so an idle connection is dropped here before the upstream drops it
# under a request in flight.
IDLE_TTL_SECS = 4.0


class UpstreamResponse:
    __slots__ = ("_exchange", "_pool", "_released", "headers", "status")

    def __init__(self, pool: UpstreamPool, exchange: Exchange) -> None:
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

    def detach_rest(self, min_bytes: int) -> tuple[int, int] | None:
        """(socket descriptor, bytes left) for moving the rest of the body by splice; None if it cannot be (TLS
        too). Call `reattach` with what was taken before `release`."""
        return None if self._pool.ssl is not None else self._exchange.detach_rest(min_bytes)

    def reattach(self, moved: int, expected: int) -> None:
        self._exchange.reattach(moved, expected)

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
        self._idle: deque[Connection] = deque()
        # Requests queued for a slot: each gets a released connection, or None meaning "open one, the slot is yours".
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()

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

    def _take_idle(self) -> Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_TTL_SECS:
                return conn
            conn.close()
        return None

    async def _acquire(self, wait_secs: float, *, reuse: bool = True) -> Connection | None:
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
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
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

    def _pass_on(self, given: Connection | None) -> None:
        if given is None:
            self._slot_freed()
        else:
            self._park(given)

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_secs):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, self._slot_freed), self.host, self.port, ssl=self.ssl
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
        conn: Connection,
        method: bytes,
        head: bytes,
        body: bytes | AsyncIterator[bytes],
        header_timeout_secs: float,
    ) -> UpstreamResponse:
        exchange = conn.begin(head_request=method == b"HEAD")
        try:
            if isinstance(body, bytes):
                await conn.write(head + body, header_timeout_secs)
            else:
                await conn.write(head, header_timeout_secs)
                await self._send_stream(conn, exchange, body, header_timeout_secs)
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
    async def _send_stream(conn: Connection, exchange: Exchange, body: AsyncIterator[bytes], stall_secs: float) -> None:
        """Send a streamed body; stop early, without failing, if the upstream has already answered (a 413)."""
        try:
            async for chunk in body:
                await conn.write(chunk, stall_secs)
                if exchange.headers_ready.done():
                    break
            else:
                return
        except UpstreamBroken:
            if not exchange.headers_ready.done() or exchange.headers_ready.exception() is not None:
                raise
        exchange.body_unsent = True  # the rest of the body was never sent: the connection cannot carry another

    def release(self, exchange: Exchange) -> None:
        conn = exchange.conn
        conn.exchange = None
        if exchange.reusable and not conn.closed:
            self._park(conn)
        else:
            conn.close()

    def _park(self, conn: Connection) -> None:
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
