from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from gateway.app import create_app
from shared.config import load_config
from shared.registry import Service, upstreams
from tests.support.fakes.echo import GZIPPED, EchoUpstream
from tests.support.fakes.raw import RawUpstream
from tests.support.fixtures import Stack
from tests.support.servers import free_port, run_server


async def raw_request(stack: Stack, request_line_and_headers: bytes) -> bytes:
    """Exactly these bytes on the wire (plus Connection: close), the whole raw response back."""
    host, port = stack.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request_line_and_headers + b"Connection: close\r\n\r\n")
    raw = await reader.read()
    writer.close()
    return raw


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def client(stack: Stack, **options: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.url, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("service", upstreams(), ids=[s.name for s in upstreams()])
async def test_every_family_reaches_its_upstream_intact(stack: Stack, service: Service) -> None:
    family = service.family
    async with client(stack) as c:
        response = await c.post(
            f"{family}/objects/a%2Fb/c.parquet?x=1&x=2&empty=&q=%20sp",
            content=b"payload \x00\xff bytes",
            headers={"X-Custom": "kept", "Authorization": "Bearer tok", "Content-Type": "application/octet-stream"},
        )
    seen = response.json()
    assert response.status_code == 200
    assert seen["upstream"] == service.name
    assert seen["method"] == "POST"
    assert seen["raw_path"] == f"{family}/objects/a%2Fb/c.parquet"
    assert seen["query"] == "x=1&x=2&empty=&q=%20sp"
    assert seen["body_length"] == len(b"payload \x00\xff bytes")
    headers = dict(seen["headers"])
    assert headers["x-custom"] == "kept"
    assert headers["authorization"] == "Bearer tok"
    assert headers["content-type"] == "application/octet-stream"


async def test_bare_family_prefix_is_forwarded(stack: Stack) -> None:
    async with client(stack) as c:
        response = await c.get("/v1/chat")
    assert response.json()["raw_path"] == "/v1/chat"


@pytest.mark.parametrize(("path", "service"), [("/v1/models", "chatd"), ("/v1/embeddings", "embedd")])
async def test_exact_openai_paths_reach_their_service(stack: Stack, path: str, service: str) -> None:
    async with client(stack) as c:
        response = await c.post(path + "?limit=2", content=b"{}")
    seen = response.json()
    assert response.status_code == 200
    assert (seen["upstream"], seen["raw_path"], seen["query"]) == (service, path, "limit=2")


@pytest.mark.parametrize("path", ["/v1/modelsX", "/v1/models/x", "/v1/embeddings/", "/v1/embeddingsX/y"])
async def test_exact_paths_match_only_exactly(stack: Stack, path: str) -> None:
    async with client(stack) as c:
        response = await c.get(path)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["message"].endswith(", /v1/embeddings, /v1/models")


async def test_forwarding_headers(stack: Stack) -> None:
    async with client(stack) as c:
        response = await c.get(
            "/v1/sql/echo",
            headers={"X-Forwarded-For": "198.51.100.7", "X-Request-ID": "req-42", "Host": "lakehouse.example"},
        )
    headers = response.json()["headers"]
    as_dict = dict(headers)
    assert as_dict["x-forwarded-for"] == "198.51.100.7, 127.0.0.1"
    assert as_dict["x-forwarded-host"] == "lakehouse.example"
    assert as_dict["x-forwarded-proto"] == "http"
    assert as_dict["x-request-id"] == "req-42"
    assert as_dict["host"].startswith("127.0.0.1:")  # the upstream's own authority
    assert response.headers["x-request-id"] == "req-42"
    # Nothing the client did not send: no injected Accept-Encoding, User-Agent or cookies beyond httpx's own.
    names = [name for name, _ in headers]
    assert names.count("accept-encoding") == 1  # httpx's own, passed through once
    assert "cookie" not in names


async def test_generated_request_id_is_forwarded_and_echoed(stack: Stack) -> None:
    async with client(stack) as c:
        response = await c.get("/v1/sql/echo")
    rid = response.headers["x-request-id"]
    assert len(rid) == 32
    assert dict(response.json()["headers"])["x-request-id"] == rid


async def test_no_default_headers_injected(stack: Stack) -> None:
    # A raw request carries only what the client wrote; the upstream must see no more than that plus X-Forwarded-*.
    raw = await raw_request(stack, b"GET /v1/sql/echo HTTP/1.1\r\nHost: gw\r\nX-Request-ID: raw-1\r\n")
    body = raw.split(b"\r\n\r\n", 1)[1]
    names = sorted(name for name, _ in json.loads(body)["headers"])
    assert names == ["host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-request-id"]


async def test_hop_by_hop_headers_are_stripped_both_ways(stack: Stack) -> None:
    async with client(stack) as c:
        request_side = await c.get(
            "/v1/sql/echo",
            headers={
                "Connection": "keep-alive, X-Client-Private",
                "X-Client-Private": "drop me",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Trailer": "x-sum",
                "Upgrade": "websocket",
                "Proxy-Authorization": "Basic eA==",
                "Proxy-Connection": "keep-alive",
                "X-End-To-End": "kept",
            },
        )
        response_side = await c.get("/v1/sql/hop")
    names = {name for name, _ in request_side.json()["headers"]}
    dropped = {"x-client-private", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection"}
    assert names.isdisjoint(dropped)
    assert "x-end-to-end" in names
    assert "connection" not in names
    assert response_side.headers["x-end-to-end"] == "kept"
    for name in ("x-upstream-private", "keep-alive", "proxy-authenticate", "trailer", "upgrade"):
        assert name not in response_side.headers


async def test_repeated_set_cookie_survives_and_no_jar_is_shared(stack: Stack) -> None:
    async with client(stack) as c:
        response = await c.get("/v1/storage/cookies")
        assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    async with httpx.AsyncClient(base_url=stack.url) as other:
        echoed = await other.get("/v1/storage/echo")
    assert "cookie" not in dict(echoed.json()["headers"])


async def test_gzip_passes_through_untouched(stack: Stack) -> None:
    raw = await raw_request(stack, b"GET /v1/embed/gzip HTTP/1.1\r\nHost: gw\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"content-encoding: gzip" in head.lower()
    assert body == GZIPPED
    assert gzip.decompress(body) == b"squeezed " * 100


async def test_sse_arrives_incrementally(stack: Stack) -> None:
    upstream = stack.upstreams["chatd"]
    async with client(stack) as c, c.stream("GET", "/v1/chat/sse") as response:
        assert response.headers["content-type"] == "text/event-stream"
        chunks = response.aiter_raw()
        first = await asyncio.wait_for(anext(chunks), timeout=5)
        # The upstream has not sent its last event yet: it waits for this.
        assert first == b"data: first\n\n"
        assert not upstream.release_sse.is_set()
        upstream.release_sse.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert rest == b"data: last\n\n"


async def test_large_request_body_streams_intact(stack: Stack) -> None:
    blob = bytes(range(256)) * 40_000  # ~10 MB

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(blob), 65536):
            yield blob[i : i + 65536]

    async with client(stack) as c:
        chunked_upload = await c.put("/v1/ingest/upload", content=pieces())
        sized_upload = await c.put("/v1/ingest/upload", content=blob)
    for response in (chunked_upload, sized_upload):
        assert response.json()["body_length"] == len(blob)
        assert response.json()["body_sha256"] == hashlib.sha256(blob).hexdigest()


async def test_an_early_answer_to_a_streamed_upload_reaches_the_client() -> None:
    # A size-capped upload service answers 413 after the first piece and stops reading: the gateway must stop
    # sending (its writes would block forever) and pass the answer on.
    answer = b'{"error": {"code": "payload_too_large", "message": "too big"}}'
    done = asyncio.Event()

    async def capped_upload(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read(65536)
        cast(asyncio.Transport, writer.transport).pause_reading()
        writer.write(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(answer), answer)
        )
        await done.wait()
        writer.close()

    upstream = await asyncio.start_server(capped_upload, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(400):
            yield b"x" * 65536
            await asyncio.sleep(0)

    config = load_config(gateway={"ingestd_url": f"http://127.0.0.1:{port}"})
    async with upstream, run_server(create_app(config)) as url, httpx.AsyncClient(timeout=10) as c:
        try:
            response = await c.put(url + "/v1/ingest/upload", content=pieces())
        finally:
            done.set()
    assert response.status_code == 413
    assert response.content == answer


async def test_head_and_status_codes_pass_through(stack: Stack) -> None:
    async with client(stack) as c:
        head = await c.head("/v1/storage/echo")
        created = await c.get("/v1/storage/status", headers={"X-Want-Status": "201"})
        teapot = await c.get("/v1/storage/status", headers={"X-Want-Status": "418"})
        after = await c.get("/v1/storage/echo")
    assert head.status_code == 200
    assert head.content == b""
    assert (created.status_code, teapot.status_code, after.status_code) == (201, 418, 200)


async def test_unknown_family_is_404(stack: Stack) -> None:
    async with client(stack) as c:
        response = await c.get("/v1/nothing/here")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["message"].startswith("no gateway family for /v1/nothing/here; known: /v1/storage,")


@pytest.mark.parametrize(
    "path",
    [
        b"/v1/storage/../admin",
        b"/v1/storage/a/%2e%2e/b",
        b"/v1/storage/a/%2E%2E",
        b"/v1/storage/a%2F..%2Fb",
        b"/v1/storage/..",
        b"/v1/storage/..\\admin",
        b"/v1/storage/a\\..\\admin",
        b"/v1/storage/a%5C..%5Cadmin",
        b"/v1/storage/..%5Cadmin",
        b"/v1/storage/%2e%2e;/admin",
        b"/v1/storage/..;x=1/admin",
        b"/v1/storage/a/..;",
        b"/v1/storage/a%5C..%5Cb",  # an encoded backslash, which some upstreams treat as a separator
        b"/v1/storage/a%5c..",
        b"/v1/storage/%5C%2e%2e%5Cetc",
    ],
)
async def test_dot_dot_segments_are_400(stack: Stack, path: bytes) -> None:
    raw = await raw_request(stack, b"GET " + path + b" HTTP/1.1\r\nHost: gw\r\n")
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1]) == {
        "error": {"code": "invalid_request", "message": "path contains a '..' segment"}
    }
    assert stack.upstreams["storaged"].forwarded == []


async def test_dots_inside_names_are_fine(stack: Stack) -> None:
    async with client(stack) as c:
        response = await c.get("/v1/storage/a..b/..c/.hidden/x;..")
    assert response.json()["raw_path"] == "/v1/storage/a..b/..c/.hidden/x;.."


@pytest.mark.parametrize("hosts", [b"", b"Host: gw\r\nHost: evil\r\n"], ids=["none", "two"])
async def test_http11_without_one_host_is_400_and_not_forwarded(stack: Stack, hosts: bytes) -> None:
    raw = await raw_request(stack, b"GET /v1/storage/x HTTP/1.1\r\n" + hosts)
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert b"exactly one Host header" in raw


async def test_upstream_refused_is_502() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with run_server(create_app(load_config(gateway={"vectord_url": dead}))) as url, httpx.AsyncClient() as c:
        response = await c.get(url + "/v1/vectors/x")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_unavailable"
    assert error["message"] == f"vectord (/v1/vectors): cannot connect to {dead}: Connection refused"


async def test_no_headers_within_family_timeout_is_504(stack: Stack) -> None:
    stack.upstreams["catalogd"].delay_secs = 2
    async with client(stack) as c:
        response = await c.get("/v1/catalog/slow")
    assert response.status_code == 504
    assert response.json()["error"] == {
        "code": "upstream_timeout",
        "message": "catalogd (/v1/catalog): no response headers within 0.5s",
    }


async def test_upstream_failure_mid_body_aborts_the_client(stack: Stack) -> None:
    async with client(stack) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get("/v1/observer/broken")
        # The gateway is still healthy afterwards.
        assert (await c.get("/v1/observer/echo")).status_code == 200


async def eventually(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def disconnected_reached(upstream: EchoUpstream, count: int) -> bool:
    return upstream.disconnected == count


async def test_client_disconnect_cancels_upstream_and_frees_connections(stack: Stack) -> None:
    upstream = stack.upstreams["matrixd"]
    batch, batches = 200, 10
    async with client(stack, timeout=30, limits=httpx.Limits(max_connections=batch)) as c:
        for done in range(1, batches + 1):
            expected = done * batch
            requests = [asyncio.create_task(c.get("/v1/matrix/hang")) for _ in range(batch)]
            # Every request of the batch is waiting at the upstream; then every client goes away.
            assert await eventually(lambda: upstream.active == batch), upstream.active
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
            assert await eventually(functools.partial(disconnected_reached, upstream, expected)), upstream.disconnected
    assert upstream.active == 0
    # Cancelled exchanges are closed, never pooled half-read.
    async with client(stack) as c:
        assert (await c.get("/v1/matrix/echo")).status_code == 200


async def test_client_gone_mid_response_cancels_the_upstream_call(stack: Stack) -> None:
    upstream = stack.upstreams["matrixd"]
    host, port = stack.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /v1/matrix/trickle HTTP/1.1\r\nHost: gw\r\n\r\n")
    received = b""
    while b"first" not in received:  # the head and the first chunk have come through the gateway
        chunk = await reader.read(65536)
        assert chunk, received
        received += chunk
    assert upstream.active == 1
    writer.close()
    assert await eventually(lambda: upstream.disconnected == 1, seconds=10), upstream.disconnected


async def test_a_stale_pooled_connection_never_becomes_a_502() -> None:
    # The upstream closes its first connection as the second request arrives (as chatd did after a 500).
    upstream = RawUpstream(lambda conn, index: "hang up" if (conn, index) == (1, 2) else "answer")
    async with upstream.serve() as up_url:
        gateway = create_app(load_config(gateway={"chatd_url": up_url}))
        async with run_server(gateway) as url:
            async with httpx.AsyncClient(base_url=url) as c:
                first = await c.post("/v1/chat", content=b"one")
            # A small body that arrives in two parts is read whole, so it can be sent again too.
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"POST /v1/chat HTTP/1.1\r\nHost: gw\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabc")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"def")
            second = await reader.read()
            writer.close()
    assert first.status_code == 200
    assert second.startswith(b"HTTP/1.1 200 ")
    assert upstream.requests == [b"one", b"abcdef", b"abcdef"]
    assert upstream.connections == 2


async def test_a_burst_opens_at_most_the_cap_of_upstream_connections() -> None:
    peers: set[int] = set()
    active = peak = 0

    async def slow(request: Request) -> PlainTextResponse:
        nonlocal active, peak
        assert request.client is not None
        peers.add(request.client.port)
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.02)
        active -= 1
        return PlainTextResponse("ok")

    async with run_server(Starlette(routes=[Route("/v1/matrix/slow", slow)])) as up_url:
        gateway = create_app(load_config(gateway={"matrixd_url": up_url, "upstream_max_connections": 4}))
        async with run_server(gateway) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
            responses = await asyncio.gather(*(c.get("/v1/matrix/slow") for _ in range(40)))
    assert [r.status_code for r in responses] == [200] * 40
    assert peak <= 4
    assert len(peers) <= 4  # sockets the gateway opened to the upstream over the whole burst


@pytest.mark.parametrize("parts_sent", [16, 8], ids=["whole-body", "half-body"])
async def test_client_gone_while_its_streamed_body_is_with_a_slow_upstream_cancels_the_call(
    stack: Stack, parts_sent: int
) -> None:
    upstream = stack.upstreams["matrixd"]
    host, port = stack.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    size = 1 << 20
    writer.write(b"POST /v1/matrix/hang HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n" % size)
    for _ in range(parts_sent):
        writer.write(b"x" * (size // 16))
        await writer.drain()
    assert await eventually(lambda: upstream.active == 1)
    writer.close()
    # matrix waits 60 s for headers; a client gone must not hold the upstream call that long.
    assert await eventually(lambda: upstream.disconnected == 1, seconds=10), upstream.disconnected


@contextlib.asynccontextmanager
async def gateway_to_storage_upstream(handler: Handler) -> AsyncIterator[str]:
    """A raw upstream served by `handler` as storaged, behind a real gateway server; yields the gateway's URL."""
    upstream = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    config = load_config(gateway={"storaged_url": f"http://127.0.0.1:{port}"})
    async with upstream, run_server(create_app(config)) as url:
        yield url


async def test_a_slow_client_slows_the_upstream_instead_of_filling_the_gateway() -> None:
    # The gateway stops reading a large response from its upstream while the client does not read: what it
    # holds is bounded by its read high-water mark and the sockets' buffers, never the body's size. When the
    # client reads again, every byte arrives, in order.
    total = 256 << 20
    piece = bytes(range(256)) * 4096  # 1 MiB
    written = 0

    async def large_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: %d\r\n\r\n" % total)
        while written < total:
            writer.write(piece)
            await writer.drain()
            written += len(piece)
        writer.close()

    async with gateway_to_storage_upstream(large_body) as url:
        host, gateway_port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(gateway_port))
        writer.write(b"GET /v1/storage/objects/big HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(1.0)  # the client reads nothing for a while
        stalled_at = written
        received = hashlib.sha256()
        size = 0
        while chunk := await reader.read(1 << 20):
            received.update(chunk)
            size += len(chunk)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert stalled_at < 48 << 20, f"the upstream got {stalled_at >> 20} MiB out while the client read nothing"
    assert size == total
    expected = hashlib.sha256()
    for _ in range(total // len(piece)):
        expected.update(piece)
    assert received.hexdigest() == expected.hexdigest()


async def count_raw(response: httpx.Response, sizes: list[int]) -> None:
    async for chunk in response.aiter_raw():
        sizes.append(len(chunk))


async def test_a_large_body_cut_short_by_its_upstream_is_cut_short_for_the_client() -> None:
    # A large body is moved socket to socket by the kernel (shared/splice.py): the upstream hanging up half way
    # must still reach the client as a truncated body, and the operator's log must say why.
    total, sent = 64 << 20, 24 << 20

    async def dies_half_way(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        writer.write(b"y" * sent)
        await writer.drain()
        writer.close()

    async with gateway_to_storage_upstream(dies_half_way) as url, httpx.AsyncClient(timeout=30) as c:
        with capture_logs() as logs:
            async with c.stream("GET", url + "/v1/storage/objects/big") as response:
                pieces: list[int] = []
                with pytest.raises(httpx.RemoteProtocolError):
                    await count_raw(response, pieces)
            after = await c.get(url + "/health")
    assert response.status_code == 200
    assert sum(pieces) == sent
    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["upstream failed mid-response"]
    assert after.status_code == 200


async def test_the_upstream_connection_is_reused_after_a_large_body() -> None:
    # After a body the kernel moved, the connection is back in a clean state: the next requests on it, large and
    # small, are answered whole, on the one connection.
    large = bytes(range(256)) * (12 << 12)  # 12 MiB
    connections = 0

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            body = large if b"/large " in head else b"small"
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        writer.close()

    async with gateway_to_storage_upstream(keep_alive) as url, httpx.AsyncClient(timeout=30) as c:
        answers = [(await c.get(url + f"/v1/storage/{path}")).content for path in ("large", "small", "large", "small")]
    assert answers == [large, b"small", large, b"small"]
    assert connections == 1


async def test_a_client_leaving_a_large_body_closes_its_upstream_connection() -> None:
    # The upstream connection is half way through a body nobody will read: it cannot be reused, so it is closed
    # (the upstream stops sending), and the gateway goes on serving.
    piece = b"z" * (1 << 20)
    upstream_stopped = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (1 << 40))
        try:
            while True:
                writer.write(piece)
                await writer.drain()
        except ConnectionError:
            upstream_stopped.set()
        finally:
            writer.close()

    async with gateway_to_storage_upstream(endless) as url:
        host, gateway_port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(gateway_port))
        writer.write(b"GET /v1/storage/objects/endless HTTP/1.1\r\nHost: gw\r\n\r\n")
        await reader.readexactly(4 << 20)
        writer.transport.abort()
        await asyncio.wait_for(upstream_stopped.wait(), 10)
        async with httpx.AsyncClient() as c:
            health = await c.get(url + "/health")
    assert health.status_code == 200
