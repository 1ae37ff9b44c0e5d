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

from shared.upstream import UpstreamPool, UpstreamUnavailable
from tests.support.servers import run_server


async def read_all(pool: UpstreamPool, target: bytes, method: bytes = b"GET") -> tuple[int, bytes]:
    headers = [(b"host", pool.host_header), (b"content-length", b"0")]
    response = await pool.request(method, target, headers, b"", header_timeout_secs=5)
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
    # POST: a GET that hits a dead connection is silently resent, which would hide the reuse.
    app = Starlette(routes=[Route("/v1/hello", hello, methods=["POST"])])
    async with run_server(app, timeout_keep_alive=0.1) as url:
        pool = UpstreamPool(url)
        assert await read_all(pool, b"/v1/hello", b"POST") == (200, b"hello over http")
        await asyncio.sleep(0.5)  # the upstream hangs up on the idle connection meanwhile
        assert await read_all(pool, b"/v1/hello", b"POST") == (200, b"hello over http")
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
