"""The red team's stack: gateway, storaged (local backend), catalogd, ingestd, queryd and vectord, each a real server
on loopback, wired as `lakehouse up` wires them; attacks go in through the gateway only, as a client's would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app as create_gateway
from services.vectord.app import create_app as create_vectord
from shared.config import LakehouseConfig, load_config
from tests.support.dataplane import DataPlane, data_plane
from tests.support.servers import run_server

CSV = b"id,city\n1,amsterdam\n2,berlin\n3,chicago\n"


# The S3 API is on, so that its door is attacked too (a second way to name every reserved key).
S3_KEYS = {"access_key_id": "attack-key", "secret_access_key": "attack-secret-0123456789"}


@dataclass
class AttackStack:
    gateway: str
    plane: DataPlane
    vectord: str
    vectord_config: LakehouseConfig
    http: httpx.AsyncClient

    @property
    def root(self) -> Path:
        assert self.plane.root is not None
        return self.plane.root

    async def sql(self, sql: str) -> httpx.Response:
        return await self.http.post(f"{self.gateway}/v1/sql", json={"sql": sql})


def vectord_config(plane: DataPlane, cache_dir: Path) -> LakehouseConfig:
    # A tiny snapshot threshold: the first writes already leave a snapshot and a manifest, not only log records.
    # No idle snapshot: the attacks compare vectord's objects before and after, and one taken meanwhile (a minute
    # into the module) would trim a log record the attacks aim at.
    return load_config(
        vectord={
            "storaged_url": plane.storaged,
            "snapshot_bytes": 1,
            "snapshot_idle_secs": 0,
            "cache_dir": str(cache_dir),
        }
    )


@asynccontextmanager
async def attack_stack(tmp_path: Path, **gateway: Any) -> AsyncIterator[AttackStack]:
    """The stack with one dataset (`trips`, ingested and visible to SQL) and one vector index (`docs`, persisted)."""
    async with AsyncExitStack() as stack:
        plane = await stack.enter_async_context(data_plane(tmp_path, s3_api=S3_KEYS))
        vectors = vectord_config(plane, tmp_path / "vectord")
        vectord = await stack.enter_async_context(run_server(create_vectord(vectors)))
        urls = {
            "storaged_url": plane.storaged,
            "catalogd_url": plane.catalogd,
            "ingestd_url": plane.ingestd,
            "queryd_url": plane.queryd,
            "vectord_url": vectord,
        }
        url = await stack.enter_async_context(run_server(create_gateway(load_config(gateway={**urls, **gateway}))))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=60))
        attack = AttackStack(url, plane, vectord, vectors, http)
        ingested = await http.post(f"{url}/v1/ingest/trips", content=CSV, headers={"content-type": "text/csv"})
        assert ingested.status_code == 201, ingested.text
        assert (await http.post(f"{url}/v1/sql/refresh")).status_code == 200
        await wait_for_vectord(http, url)
        await seed_vectors(http, url)
        yield attack


async def wait_for_vectord(http: httpx.AsyncClient, gateway: str) -> None:
    """vectord loads its indexes from storaged after it starts listening: wait until its API serves."""
    for _ in range(500):
        if (await http.get(f"{gateway}/v1/vectors")).status_code == 200:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("vectord never finished loading")


async def seed_vectors(http: httpx.AsyncClient, gateway: str) -> None:
    created = await http.put(f"{gateway}/v1/vectors/docs", json={"dimensions": 3, "metric": "l2"})
    assert created.status_code in (200, 201), created.text
    items = [{"id": f"d{i}", "vector": [i, 0, 0], "metadata": {"n": i}} for i in range(5)]
    upserted = await http.post(f"{gateway}/v1/vectors/docs/upsert", json={"items": items})
    assert upserted.status_code == 200, upserted.text
