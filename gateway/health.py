"""GET /v1/health: every upstream's /health probed at once, each with its status and latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx

PROBE_TIMEOUT_SECS = 2.0


async def probe(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        response = await client.get(url + "/health")
    except httpx.TimeoutException:
        status, detail = "down", f"no answer within {PROBE_TIMEOUT_SECS:g}s"
    except httpx.TransportError as exc:
        status, detail = "down", f"unreachable: {type(exc).__name__}"
    else:
        ok = response.status_code == 200
        status, detail = ("ok", "") if ok else ("down", f"answered {response.status_code}")
    result: dict[str, Any] = {
        "status": status,
        "url": url,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if detail:
        result["detail"] = detail
    return result


async def probe_all(client: httpx.AsyncClient, upstreams: Mapping[str, str]) -> dict[str, Any]:
    results = await asyncio.gather(*(probe(client, url) for url in upstreams.values()))
    services = dict(zip(upstreams, results, strict=True))
    overall = "ok" if all(r["status"] == "ok" for r in results) else "degraded"
    return {"status": overall, "services": services}
