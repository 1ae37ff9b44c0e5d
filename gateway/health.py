"""GET /v1/health: every upstream's /health probed at once, each with its status and latency."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from shared.upstream import UpstreamError, UpstreamPool, UpstreamTimeout

PROBE_TIMEOUT_SECS = 2.0
# Probes of one upstream at once: the console, /v1/health and an operator's curl, not traffic.
PROBE_CONNECTIONS = 4


class Prober:
    """Probes over the proxy's own client (UpstreamPool), so a keep-alive connection the upstream closed as it was
    reused is retried once on a fresh one, exactly as a forwarded request is, instead of showing a live service
    as down. Its pools are apart from the proxy's: a probe never queues behind traffic for a connection."""

    def __init__(self, upstreams: Mapping[str, str]) -> None:
        self.pools = {
            name: UpstreamPool(url, max_connections=PROBE_CONNECTIONS, connect_timeout_secs=PROBE_TIMEOUT_SECS)
            for name, url in upstreams.items()
        }

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for pool in self.pools.values():
            await pool.aclose()

    async def probe_all(self) -> dict[str, Any]:
        results = await asyncio.gather(*(probe(pool) for pool in self.pools.values()))
        services = dict(zip(self.pools, results, strict=True))
        overall = "ok" if all(r["status"] == "ok" for r in results) else "degraded"
        return {"status": overall, "services": services}


def _says_loading(body: bytes) -> bool:
    try:
        said = json.loads(body)
    except ValueError:
        return False
    return isinstance(said, dict) and said.get("status") == "loading"


async def probe(pool: UpstreamPool) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECS):
            response = await pool.request(
                b"GET", b"/health", [(b"host", pool.host_header)], b"", header_timeout_secs=PROBE_TIMEOUT_SECS
            )
            body = await response.read_all()
    except (TimeoutError, UpstreamTimeout):
        status, detail = "down", f"no answer within {PROBE_TIMEOUT_SECS:g}s"
    except UpstreamError as exc:
        status, detail = "down", f"unreachable: {type(exc).__name__}: {exc}"
    else:
        if response.status == 200:
            status, detail = "ok", ""
        elif response.status == 503 and _says_loading(body):
            status, detail = "loading", "answered 503: loading (not serving its API yet)"
        else:
            status, detail = "down", f"answered {response.status}"
    result: dict[str, Any] = {
        "status": status,
        "url": pool.url,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if detail:
        result["detail"] = detail
    return result
