"""A streaming load generator: N keep-alive clients each POST a streaming request, read it to the end, repeat.

Measures time to the first body byte (TTFT) and chunks per second; httptools parses the responses, so the client
costs little next to what it measures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


@dataclass(frozen=True)
class StreamResult:
    label: str
    streams: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    chunks_per_sec: float
    chunks_per_stream: float
    errors: int


class _Client(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.reset()

    def reset(self) -> None:
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.first_body: asyncio.Future[None] = self.loop.create_future()
        self.first_at = 0.0
        self.body: list[bytes] = []
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError("connection lost"))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if not self.first_at:
            self.first_at = time.perf_counter()
            self.first_body.set_result(None)
        self.body.append(body)

    def on_message_complete(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _run(
    url: str, body: bytes, marker: bytes, clients: int, seconds: float
) -> tuple[list[float], int, int, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        parts.path.encode(),
        host.encode(),
        port,
        len(body),
        body,
    )
    loop = asyncio.get_running_loop()
    ttfts: list[float] = []
    chunks = 0
    errors = 0
    deadline = loop.time() + seconds

    async def client() -> None:
        nonlocal chunks, errors
        _, proto = await loop.create_connection(lambda: _Client(loop), host, port)
        assert proto.transport is not None
        while loop.time() < deadline:
            proto.reset()
            sent = time.perf_counter()
            proto.transport.write(request)
            try:
                await proto.done
            except ConnectionError:
                errors += 1
                return
            if proto.status != 200:
                errors += 1
                continue
            ttfts.append(proto.first_at - sent)
            chunks += b"".join(proto.body).count(marker)
        proto.transport.close()

    began = loop.time()
    await asyncio.gather(*(client() for _ in range(clients)))
    return ttfts, chunks, errors, loop.time() - began


def stream_load(label: str, url: str, body: bytes, marker: bytes, clients: int, seconds: float) -> StreamResult:
    """`marker` is what starts (NDJSON: ends) each chunk in the body: b"\\n" or b"data: "."""
    ttfts, chunks, errors, elapsed = asyncio.run(_run(url, body, marker, clients, seconds))
    ttfts.sort()
    n = len(ttfts)
    result = StreamResult(
        label,
        n,
        ttfts[n // 2] * 1000 if n else 0.0,
        ttfts[int(n * 0.99)] * 1000 if n else 0.0,
        chunks / elapsed,
        chunks / n if n else 0.0,
        errors,
    )
    print(
        f"  measured {label:<24} c={clients:<3} {n} streams  TTFT p50 {result.ttft_p50_ms:8.3f} ms"
        f"  p99 {result.ttft_p99_ms:8.3f} ms  {result.chunks_per_sec:>9.0f} chunks/s"
        f"  ({result.chunks_per_stream:.0f}/stream)  errors {errors}",
        flush=True,
    )
    return result


async def _abort(url: str, body: bytes, total: int, clients: int) -> int:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        parts.path.encode(),
        host.encode(),
        port,
        len(body),
        body,
    )
    loop = asyncio.get_running_loop()
    remaining = total
    started = 0

    async def client() -> None:
        nonlocal remaining, started
        while remaining > 0:
            remaining -= 1
            _, proto = await loop.create_connection(lambda: _Client(loop), host, port)
            assert proto.transport is not None
            proto.transport.write(request)
            await asyncio.wait((proto.first_body, proto.done), return_when=asyncio.FIRST_COMPLETED)
            started += 1 if proto.first_at else 0
            proto.done.cancel()  # nobody waits for the end any more
            proto.transport.abort()  # gone mid-stream, as a client that crashed or was killed

    await asyncio.gather(*(client() for _ in range(clients)))
    return started


def abort_streams(url: str, body: bytes, total: int, clients: int = 16) -> int:
    """Start `total` streams and drop each connection after its first body byte; how many had started."""
    return asyncio.run(_abort(url, body, total, clients))
