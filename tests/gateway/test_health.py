from __future__ import annotations

import asyncio
import time

import httpx

from gateway.app import create_app, family_timeout
from shared.config import load_config
from shared.registry import upstreams
from shared.web.app import service_app
from tests.support.fixtures import Stack
from tests.support.servers import free_port, run_server


async def answering_once(reply: bytes, *, delay: float = 0.0) -> tuple[asyncio.Server, str]:
    """A raw upstream that answers each connection's first request with `reply` (after `delay`), then closes it."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(delay)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_gateway_liveness(stack: Stack) -> None:
    async with httpx.AsyncClient() as c:
        response = await c.get(stack.url + "/health")
    assert response.json() == {"status": "ok", "service": "gateway"}


async def test_v1_health_probes_every_upstream(stack: Stack) -> None:
    async with httpx.AsyncClient() as c:
        response = await c.get(stack.url + "/v1/health")
    report = response.json()
    assert response.status_code == 200
    assert report["status"] == "ok"
    assert list(report["services"]) == [s.name for s in upstreams()]
    for result in report["services"].values():
        assert result["status"] == "ok"
        assert result["latency_ms"] >= 0


async def test_v1_health_is_degraded_when_one_is_down() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with run_server(create_app(load_config(gateway={"pathwayd_url": dead}))) as url, httpx.AsyncClient() as c:
        started = time.perf_counter()
        response = await c.get(url + "/v1/health")
        outside_ms = (time.perf_counter() - started) * 1000
    report = response.json()
    assert response.status_code == 503
    assert report["status"] == "degraded"
    latency_ms = report["services"]["pathwayd"]["latency_ms"]
    assert report["services"]["pathwayd"] == {
        "status": "down",
        "url": dead,
        "latency_ms": latency_ms,
        "detail": f"unreachable: UpstreamUnavailable: cannot connect to {dead}: Connection refused",
    }
    # Measured inside the client's own round trip: never more than what the client saw, never nothing.
    assert 0 < latency_ms <= outside_ms


async def test_v1_health_latency_is_in_milliseconds() -> None:
    upstream, slow = await answering_once(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", delay=0.05
    )
    config = load_config(gateway={"matrixd_url": slow})
    async with upstream, run_server(create_app(config)) as url, httpx.AsyncClient() as c:
        started = time.perf_counter()
        report = (await c.get(url + "/v1/health")).json()
        outside_ms = (time.perf_counter() - started) * 1000
    matrixd = report["services"]["matrixd"]
    assert (matrixd["status"], matrixd["detail"]) == ("down", "answered 500")
    # The upstream waited 50 ms before answering (a bound with slack for timer granularity, not a timing).
    assert 40 <= matrixd["latency_ms"] <= outside_ms


def test_chat_waits_as_long_as_chatd_plus_a_margin() -> None:
    assert family_timeout(load_config(), "chat") == 190
    assert family_timeout(load_config(chatd={"timeout_secs": 30}), "chat") == 40
    assert family_timeout(load_config(chatd={"timeout_secs": 0}), "chat") == 190
    assert family_timeout(load_config(gateway={"timeouts": {"chat": 5}}), "chat") == 5
    assert family_timeout(load_config(), "sql") == 300


async def test_a_keep_alive_closed_as_the_probe_reuses_it_is_not_down() -> None:
    # The race uvicorn's keep-alive timer loses now and then, made certain: every connection answers its first
    # request (keep-alive), then closes on the next one without a byte back, as a server whose idle timeout fired
    # just as that request arrived.
    async def closes_when_reused(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b'{"status": "ok", "service": "catalogd"}'
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    upstream = await asyncio.start_server(closes_when_reused, "127.0.0.1", 0)
    flaky = f"http://127.0.0.1:{upstream.sockets[0].getsockname()[1]}"
    config = load_config(gateway={"catalogd_url": flaky})
    async with upstream, run_server(create_app(config)) as url, httpx.AsyncClient() as c:
        reports = [(await c.get(url + "/v1/health")).json()["services"]["catalogd"] for _ in range(3)]
    assert [r["status"] for r in reports] == ["ok", "ok", "ok"], reports


async def test_a_probe_failure_names_the_cause() -> None:
    upstream, odd = await answering_once(b"SPDY/9 what\r\n\r\n")
    config = load_config(gateway={"embedd_url": odd})
    async with upstream, run_server(create_app(config)) as url, httpx.AsyncClient() as c:
        embedd = (await c.get(url + "/v1/health")).json()["services"]["embedd"]
    assert embedd["status"] == "down"
    # The kind of failure and what exactly went wrong, not a bare exception name.
    assert embedd["detail"].startswith("unreachable: UpstreamBroken: malformed response from upstream: "), embedd


async def test_a_service_still_loading_is_shown_as_loading_not_ready() -> None:
    loading = service_app("vectord", load_config(), [])
    loading.state.ready = False
    async with run_server(loading) as upstream:
        config = load_config(gateway={"vectord_url": upstream})
        async with run_server(create_app(config)) as url, httpx.AsyncClient() as c:
            own = await c.get(upstream + "/health")
            response = await c.get(url + "/v1/health")
    assert (own.status_code, own.json()) == (503, {"status": "loading", "service": "vectord"})
    assert response.status_code == 503
    vectord = response.json()["services"]["vectord"]
    assert (vectord["status"], vectord["detail"]) == ("loading", "answered 503: loading (not serving its API yet)")
