from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from shared.upstream import UpstreamBroken, UpstreamPool, UpstreamTimeout, UpstreamUnavailable
from tests.support.fakes.raw import RawUpstream
from tests.support.servers import run_server


async def read_all(pool: UpstreamPool, target: bytes) -> tuple[int, bytes]:
    response = await pool.request(b"GET", target, [(b"host", pool.host_header)], b"", header_timeout_secs=5)
    return response.status, await response.read_all()


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello over {request.url.scheme}")


def test_url_parts() -> None:
    pool = UpstreamPool("https://api.example.com/coding/v1")
    assert (pool.host, pool.port, pool.host_header, pool.path_prefix) == (
        "api.example.com",
        443,
        b"api.example.com",
        b"/coding/v1",
    )
    assert pool.ssl is not None
    plain = UpstreamPool("http://127.0.0.1:3211")
    assert (plain.port, plain.ssl) == (3211, None)
    with pytest.raises(ValueError, match='expected an http:// or https:// upstream URL, got "ftp://x"'):
        UpstreamPool("ftp://x")


async def test_tls_upstream_with_verified_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    app = Starlette(routes=[Route("/v1/hello", hello)])
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with run_server(app, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)) as url:
        port = url.rsplit(":", 1)[1]
        trusted = UpstreamPool(f"https://127.0.0.1:{port}", ssl_context=client_context)
        assert await read_all(trusted, b"/v1/hello") == (200, b"hello over https")
        assert await read_all(trusted, b"/v1/hello") == (200, b"hello over https")  # over the pooled connection
        await trusted.aclose()

        untrusted = UpstreamPool(f"https://127.0.0.1:{port}")
        with pytest.raises(
            UpstreamUnavailable, match="TLS certificate verify failed: unable to get local issuer certificate"
        ):
            await read_all(untrusted, b"/v1/hello")


async def test_connection_closed_by_the_upstream_while_idle_is_not_reused() -> None:
    app = Starlette(routes=[Route("/v1/hello", hello)])
    async with run_server(app, timeout_keep_alive=0.1) as url:
        pool = UpstreamPool(url)
        assert await read_all(pool, b"/v1/hello") == (200, b"hello over http")
        await asyncio.sleep(0.5)  # the upstream hangs up on the idle connection meanwhile
        assert await read_all(pool, b"/v1/hello") == (200, b"hello over http")
        await pool.aclose()


async def test_response_body_arrives_in_pieces_as_sent() -> None:
    async def stream(request: Request) -> StreamingResponse:
        async def pieces() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"piece {i}\n".encode()
                await asyncio.sleep(0.05)

        return StreamingResponse(pieces())

    async with run_server(Starlette(routes=[Route("/v1/stream", stream)])) as url:
        pool = UpstreamPool(url)
        response = await pool.request(b"GET", b"/v1/stream", [(b"host", pool.host_header)], b"", header_timeout_secs=5)
        pieces = []
        while (chunk := await response.read()) is not None:
            pieces.append(chunk)
        response.release()
        await pool.aclose()
    assert pieces == [b"piece 0\n", b"piece 1\n", b"piece 2\n"]


async def test_pool_as_context_manager_closes_its_connections() -> None:
    app = Starlette(routes=[Route("/v1/hello", hello)])
    async with run_server(app) as url:
        async with UpstreamPool(url) as pool:
            assert await read_all(pool, b"/v1/hello") == (200, b"hello over http")
            assert await read_all(pool, b"/v1/hello") == (200, b"hello over http")
            assert pool.open == 1  # the second request reused the first one's connection
        assert pool.open == 0


async def post(pool: UpstreamPool, body: bytes | AsyncIterator[bytes], wait: float = 5) -> tuple[int, bytes]:
    headers = [(b"host", pool.host_header), (b"content-length", b"3")]
    response = await pool.request(b"POST", b"/x", headers, body, header_timeout_secs=wait)
    return response.status, await response.read_all()


async def test_a_stale_reused_connection_is_retried_once_on_a_fresh_one() -> None:
    # The first connection answers once, then closes as the next request arrives: the race an upstream's
    # keep-alive close makes with a pooled connection.
    upstream = RawUpstream(lambda conn, index: "hang up" if (conn, index) == (1, 2) else "answer")
    async with upstream.serve() as url, UpstreamPool(url) as pool:
        assert await post(pool, b"abc") == (200, b"ok")
        assert await post(pool, b"def") == (200, b"ok")
    assert upstream.connections == 2
    assert upstream.requests == [b"abc", b"def", b"def"]


async def test_a_streamed_body_is_not_replayed() -> None:
    upstream = RawUpstream(lambda conn, index: "hang up" if (conn, index) == (1, 2) else "answer")

    async def body() -> AsyncIterator[bytes]:
        yield b"def"

    async with upstream.serve() as url, UpstreamPool(url) as pool:
        assert await post(pool, b"abc") == (200, b"ok")
        with pytest.raises(UpstreamBroken, match="closed the connection before the response was complete"):
            await post(pool, body())
    assert upstream.connections == 1


async def test_connection_close_from_the_upstream_is_honoured() -> None:
    upstream = RawUpstream(lambda conn, index: "close header")
    async with upstream.serve() as url, UpstreamPool(url) as pool:
        assert await post(pool, b"abc", wait=2) == (200, b"ok")
        assert await post(pool, b"def", wait=2) == (200, b"ok")
        assert pool.open == 0
    assert upstream.connections == 2


async def test_connections_per_upstream_are_capped_and_requests_queue() -> None:
    active, peak = 0, 0
    gate, full = asyncio.Event(), asyncio.Event()

    async def slow(request: Request) -> PlainTextResponse:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        if active == 3:
            full.set()
        await gate.wait()
        active -= 1
        return PlainTextResponse("done")

    async with (
        run_server(Starlette(routes=[Route("/v1/slow", slow)])) as url,
        UpstreamPool(url, max_connections=3) as pool,
    ):
        tasks = [asyncio.create_task(read_all(pool, b"/v1/slow")) for _ in range(12)]
        await full.wait()
        queued = tasks[-1]
        queued.cancel()  # a queued request that gives up leaves no slot behind
        await asyncio.sleep(0.1)
        assert (active, pool.open) == (3, 3)
        gate.set()
        results = await asyncio.gather(*tasks[:-1])
        assert results == [(200, b"done")] * 11
        assert peak == 3
        assert pool.open <= 3
        assert await read_all(pool, b"/v1/slow") == (200, b"done")


async def test_a_request_queued_past_its_wait_is_a_timeout() -> None:
    gate, started = asyncio.Event(), asyncio.Event()

    async def slow(request: Request) -> PlainTextResponse:
        started.set()
        await gate.wait()
        return PlainTextResponse("done")

    async with (
        run_server(Starlette(routes=[Route("/v1/slow", slow)])) as url,
        UpstreamPool(url, max_connections=1) as pool,
    ):
        first = asyncio.create_task(read_all(pool, b"/v1/slow"))
        await started.wait()
        headers = [(b"host", pool.host_header)]
        with pytest.raises(UpstreamTimeout, match=r"all 1 connections to .* busy for 0.2s"):
            await pool.request(b"GET", b"/v1/slow", headers, b"", header_timeout_secs=0.2)
        gate.set()
        assert await first == (200, b"done")


async def test_an_upstream_that_stops_reading_the_body_is_a_timeout_not_a_hang() -> None:
    upstream = RawUpstream(lambda conn, index: "stall")

    async def body() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield b"x" * 65536

    async with upstream.serve() as url, UpstreamPool(url) as pool:
        headers = [(b"host", pool.host_header), (b"content-length", str(256 * 65536).encode())]
        with pytest.raises(UpstreamTimeout, match=r"upstream read none of the request body for 0\.3s"):
            await pool.request(b"PUT", b"/x", headers, body(), header_timeout_secs=0.3)
        assert pool.open == 0
