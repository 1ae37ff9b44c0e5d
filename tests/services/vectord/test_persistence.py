"""vectord persisted through a real storaged: restarts, group commit, snapshots trimming the log, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np

from services.storaged.client import StoragedClient
from services.vectord.app import create_app
from shared.config import load_config
from tests.support.servers import app_client, free_port
from tests.support.storage import StoragedService


@asynccontextmanager
async def vectord(storaged_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    # No local snapshot copies unless a test names a directory for them (the default is under the working dir).
    config = load_config(vectord={"storaged_url": storaged_url, "cache_dir": "", **settings})
    async with app_client(create_app(config)) as client:
        yield client


async def ready(client: httpx.AsyncClient) -> None:
    for _ in range(1200):
        if (await client.get("/v1/vectors")).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("vectord never finished loading")


def items(start: int, count: int, dims: int = 8) -> list[dict[str, Any]]:
    rng = np.random.default_rng(start)
    return [
        {"id": f"id{i}", "vector": rng.standard_normal(dims).tolist(), "metadata": {"n": i}}
        for i in range(start, start + count)
    ]


async def ids_of(client: httpx.AsyncClient, index: str, vector: list[float], k: int) -> set[str]:
    response = await client.post(f"/v1/vectors/{index}/query", json={"vector": vector, "k": k})
    return {m["id"] for m in response.json()["matches"]}


async def keys(storaged: StoragedService, prefix: str) -> list[str]:
    return list(await sizes(storaged, prefix))


async def sizes(storaged: StoragedService, prefix: str) -> dict[str, int]:
    # vectord's objects are under a reserved prefix: only the internal route lists them.
    async with StoragedClient(storaged.url, internal=True) as client:
        return {info.key: info.size async for info in client.iter_objects(prefix)}


async def test_state_survives_a_restart(storaged_local: StoragedService) -> None:
    async with vectord(storaged_local.url) as client:
        await ready(client)
        await client.put("/v1/vectors/keep", json={"dimensions": 8, "metric": "l2"})
        await client.put("/v1/vectors/gone", json={"dimensions": 8})
        await client.post("/v1/vectors/keep/upsert", json={"items": items(0, 50)})
        await client.post("/v1/vectors/keep/upsert", json={"items": [{**items(7, 1)[0], "metadata": {"v": 2}}]})
        await client.post("/v1/vectors/keep/delete", json={"ids": ["id3"]})
        await client.delete("/v1/vectors/gone")
        before = (await client.post("/v1/vectors/keep/query", json={"vector": [0.1] * 8, "k": 49})).json()
    async with vectord(storaged_local.url) as client:
        await ready(client)
        listing = (await client.get("/v1/vectors")).json()
        after = (await client.post("/v1/vectors/keep/query", json={"vector": [0.1] * 8, "k": 49})).json()
        filtered = (await client.post("/v1/vectors/keep/query", json={"vector": [0.1] * 8, "filter": {"v": 2}})).json()
    assert listing == {"indexes": [{"name": "keep", "dimensions": 8, "metric": "l2", "count": 49}]}
    assert after == before
    assert [m["id"] for m in filtered["matches"]] == ["id7"]


async def test_concurrent_writes_share_log_records(storaged_local: StoragedService) -> None:
    async with vectord(storaged_local.url) as client:
        await ready(client)
        await client.put("/v1/vectors/g", json={"dimensions": 8})
        responses = await asyncio.gather(
            *(client.post("/v1/vectors/g/upsert", json={"items": items(i * 10, 10)}) for i in range(40))
        )
        assert all(r.status_code == 200 for r in responses)
        assert (await client.get("/v1/vectors/g")).json()["count"] == 400
    records = await keys(storaged_local, "vectord/wal/")
    # 41 acknowledged changes (the create and 40 upserts), far fewer records: writes that wait share one.
    assert len(records) < 20, records


async def test_snapshots_trim_the_log(storaged_local: StoragedService) -> None:
    async with vectord(storaged_local.url, snapshot_bytes=20_000) as client:
        await ready(client)
        await client.put("/v1/vectors/s", json={"dimensions": 8})
        for i in range(30):
            await client.post("/v1/vectors/s/upsert", json={"items": items(i * 20, 20)})
        await client.post("/v1/vectors/s/delete", json={"ids": ["id0", "id1"]})
        everything = await ids_of(client, "s", [0.0] * 7 + [1.0], 1000)
        running = await sizes(storaged_local, "vectord/wal/")
    snapshots = await keys(storaged_local, "vectord/snapshots/")
    manifests = await keys(storaged_local, "vectord/manifest/")
    # 32 changes were logged; each checkpoint removed the records it covers, so what is left is under the threshold
    assert "vectord/wal/00000000000000000001" not in running
    assert sum(running.values()) < 20_000 + max(running.values(), default=0)
    # and the stop took a last checkpoint: one snapshot, one manifest, no record to replay
    assert len(snapshots) == 1
    assert len(manifests) == 1
    assert await keys(storaged_local, "vectord/wal/") == []
    async with vectord(storaged_local.url) as client:
        await ready(client)
        assert (await client.get("/v1/vectors/s")).json()["count"] == 598
        assert await ids_of(client, "s", [0.0] * 7 + [1.0], 1000) == everything


async def test_an_idle_vectord_snapshots_what_its_log_holds(storaged_local: StoragedService) -> None:
    # Far below the size threshold: only the idle timer can take this checkpoint, and it does while vectord runs.
    async with vectord(storaged_local.url, snapshot_bytes=1 << 30, snapshot_idle_secs=0.3) as client:
        await ready(client)
        await client.put("/v1/vectors/idle", json={"dimensions": 8})
        await client.post("/v1/vectors/idle/upsert", json={"items": items(0, 10)})
        for _ in range(200):
            if not await keys(storaged_local, "vectord/wal/"):
                break
            await asyncio.sleep(0.05)
        assert await keys(storaged_local, "vectord/wal/") == []
        assert len(await keys(storaged_local, "vectord/snapshots/idle/")) == 1
        assert (await client.post("/v1/vectors/idle/upsert", json={"items": items(10, 5)})).status_code == 200
    async with vectord(storaged_local.url) as client:
        await ready(client)
        assert (await client.get("/v1/vectors/idle")).json()["count"] == 15  # the snapshot and what came after it


async def test_a_write_storaged_refuses_changes_nothing(storaged_local: StoragedService) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    async with vectord(storaged_local.url) as client:
        await ready(client)
        await client.put("/v1/vectors/w", json={"dimensions": 8})
        log = client._transport.app.state.service.committer.log  # type: ignore[attr-defined]
        log.client._http.base_url = httpx.URL(down)
        response = await client.post("/v1/vectors/w/upsert", json={"items": items(0, 3)})
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unavailable"
        assert "not saved and not applied" in response.json()["error"]["message"]
        assert (await client.get("/v1/vectors/w")).json()["count"] == 0
        log.client._http.base_url = httpx.URL(storaged_local.url)
        assert (await client.post("/v1/vectors/w/upsert", json={"items": items(0, 3)})).status_code == 200
    async with vectord(storaged_local.url) as client:
        await ready(client)
        assert (await client.get("/v1/vectors/w")).json()["count"] == 3


async def test_loading_waits_for_storaged(storaged_local: StoragedService) -> None:
    port = free_port()
    async with vectord(f"http://127.0.0.1:{port}") as client:
        response = await client.get("/v1/vectors")
        assert response.status_code == 503
        assert "loading its indexes from storaged" in response.json()["error"]["message"]
        health = await client.get("/health")
        assert (health.status_code, health.json()) == (503, {"status": "loading", "service": "vectord"})
