"""Real vectord processes stopped hard and cleanly: kill -9 under write load loses no acknowledged change; a
SIGTERM checkpoints, so the next start restores the snapshot from its local copy and replays no log record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from scripts.net import free_ports, wait_for_http
from services.storaged.client import StoragedClient

DIMS = 16


@contextmanager
def serve(name: str, config: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.stack.cli", "serve", name, "--config", str(config)],
            stdout=out,
            stderr=out,
            env={**os.environ, **(env or {})},
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


async def loaded(url: str) -> None:
    async with httpx.AsyncClient() as client:
        # generous: on a loaded CI box a cold start (imports, then the replay) can take a while
        for _ in range(2400):
            try:
                if (await client.get(url + "/v1/vectors")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("vectord did not load within 120 s")


def write_config(tmp_path: Path, storaged_port: int, vectord_port: int, *, snapshot_bytes: int) -> Path:
    config = tmp_path / "lakehouse.toml"
    config.write_text(
        f'[storaged]\nbind = "127.0.0.1:{storaged_port}"\nbackend = "local"\nroot = "{tmp_path / "objects"}"\n'
        f'[vectord]\nbind = "127.0.0.1:{vectord_port}"\nstoraged_url = "http://127.0.0.1:{storaged_port}"\n'
        f'snapshot_bytes = {snapshot_bytes}\ncache_dir = "{tmp_path / "vectord-cache"}"\n'
    )
    return config


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    storaged_port, vectord_port = free_ports(2)
    # small, so checkpoints (snapshot + log trim) happen during the run and the restart reads both
    config = write_config(tmp_path, storaged_port, vectord_port, snapshot_bytes=6000)
    url = f"http://127.0.0.1:{vectord_port}"
    acked: set[str] = set()
    deleted: set[str] = set()
    in_flight: set[str] = set()  # sent for deletion; acknowledged ones are in `deleted` too
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1000, DIMS)).tolist()

    with serve("storaged", config, tmp_path / "storaged.log") as storaged:
        wait_for_http(f"http://127.0.0.1:{storaged_port}/health", storaged, timeout_secs=120)
        with serve("vectord", config, tmp_path / "vectord.log") as vectord:
            await loaded(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                assert (await client.put("/v1/vectors/k", json={"dimensions": DIMS})).status_code == 201
                batches = iter(range(100))
                enough = asyncio.Event()

                async def writer() -> None:
                    for batch in batches:
                        ids = [f"b{batch}-{i}" for i in range(10)]
                        items = [
                            {"id": item, "vector": vectors[batch * 10 + i], "metadata": {"batch": batch}}
                            for i, item in enumerate(ids)
                        ]
                        try:
                            response = await client.post("/v1/vectors/k/upsert", json={"items": items})
                            if response.status_code == 200:
                                acked.update(ids)
                                if len(acked) >= 400:
                                    enough.set()
                            if batch % 5 == 0 and response.status_code == 200:
                                gone = ids[:3]
                                # A delete the kill cuts short may or may not have been applied: no promise either way.
                                in_flight.update(gone)
                                response = await client.post("/v1/vectors/k/delete", json={"ids": gone})
                                if response.status_code == 200:
                                    deleted.update(gone)
                        except httpx.TransportError:
                            return

                async def killer() -> None:
                    await enough.wait()
                    os.kill(vectord.pid, signal.SIGKILL)

                await asyncio.gather(killer(), *(writer() for _ in range(6)))
            assert vectord.wait(timeout=10) == -signal.SIGKILL
        with serve("vectord", config, tmp_path / "vectord.log") as vectord:
            await loaded(url)
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                # k above the count: an exact scan, so the answer is every item present
                response = await client.post("/v1/vectors/k/query", json={"vector": [1.0] * DIMS, "k": 1000})
                present = {m["id"] for m in response.json()["matches"]}
    assert len(acked) >= 400
    # Every acknowledged upsert is there, unless a delete of it was sent (acknowledged: it must be gone).
    assert acked - in_flight <= present, sorted(acked - in_flight - present)[:10]
    assert not (deleted & present)


async def test_a_sigterm_checkpoints_so_the_restart_replays_nothing(tmp_path: Path) -> None:
    storaged_port, vectord_port = free_ports(2)
    # far above what the test writes: no checkpoint happens while it runs, only the one the stop takes
    config = write_config(tmp_path, storaged_port, vectord_port, snapshot_bytes=1 << 30)
    storaged_url, url = f"http://127.0.0.1:{storaged_port}", f"http://127.0.0.1:{vectord_port}"
    rng = np.random.default_rng(1)
    items = [
        {"id": f"v{i}", "vector": row, "metadata": {"i": i}} for i, row in enumerate(rng.random((300, DIMS)).tolist())
    ]
    query = {"vector": [0.5] * DIMS, "k": 300, "filter": {"i": 7}}
    vectord_log = tmp_path / "vectord.log"

    async def wal_records() -> list[str]:
        async with StoragedClient(storaged_url, internal=True) as storage:
            return [info.key async for info in storage.iter_objects("vectord/wal/")]

    with serve("storaged", config, tmp_path / "storaged.log") as storaged:
        wait_for_http(storaged_url + "/health", storaged, timeout_secs=120)
        with serve("vectord", config, vectord_log) as vectord:
            await loaded(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                assert (await client.put("/v1/vectors/t", json={"dimensions": DIMS})).status_code == 201
                for start in range(0, 300, 100):
                    response = await client.post("/v1/vectors/t/upsert", json={"items": items[start : start + 100]})
                    assert response.status_code == 200
                assert (await client.post("/v1/vectors/t/delete", json={"ids": ["v0"]})).status_code == 200
                before = (await client.post("/v1/vectors/t/query", json=query)).json()
            assert len(await wal_records()) >= 4
            vectord.send_signal(signal.SIGTERM)
            # uvicorn shuts down gracefully, then re-raises the signal it caught: the exit says SIGTERM
            assert vectord.wait(timeout=60) == -signal.SIGTERM
        assert await wal_records() == []
        with serve("vectord", config, vectord_log) as vectord:
            await loaded(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                count = (await client.get("/v1/vectors/t")).json()["count"]
                after = (await client.post("/v1/vectors/t/query", json=query)).json()
        # A local copy that is not of the snapshot storaged holds (another storaged's, say) is never served.
        (header,) = (tmp_path / "vectord-cache" / "t").glob("*.json")
        header.write_bytes(header.read_bytes().replace(b'"etag":"', b'"etag":"stale-'))
        with serve("vectord", config, vectord_log) as vectord:
            await loaded(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                refetched = (await client.post("/v1/vectors/t/query", json=query)).json()
    events = [json.loads(line) for line in vectord_log.read_text().splitlines() if line.startswith("{")]
    loads = [event for event in events if event.get("event") == "loaded"]
    assert count == 299
    assert after == before == refetched
    assert after["matches"][0]["id"] == "v7"
    assert [event["records_replayed"] for event in loads] == [0, 0, 0]
    # The restart restores the graph from the local copy the stop's checkpoint left; the copy found stale is
    # fetched from storaged and made again.
    assert [event["snapshots_from"] for event in loads] == [{}, {"t": "cache"}, {"t": "storaged"}]
    assert b"stale-" not in header.read_bytes()


async def test_the_log_replayed_after_kill_9_gives_the_state_that_was_acknowledged(tmp_path: Path) -> None:
    # Replay adds runs of upserts as one batch: ids sent again, deletes between runs and an index dropped and made
    # again with other dimensions must come back exactly as they were.
    storaged_port, vectord_port = free_ports(2)
    config = write_config(tmp_path, storaged_port, vectord_port, snapshot_bytes=1 << 30)
    storaged_url, url = f"http://127.0.0.1:{storaged_port}", f"http://127.0.0.1:{vectord_port}"
    rng = np.random.default_rng(2)

    def batch(ids: list[str], dims: int) -> dict[str, object]:
        return {"items": [{"id": i, "vector": rng.random(dims).tolist(), "metadata": {"id": i}} for i in ids]}

    writes: list[tuple[str, str, dict[str, object] | None]] = [
        ("PUT", "/v1/vectors/a", {"dimensions": DIMS}),
        ("POST", "/v1/vectors/a/upsert", batch([f"x{i}" for i in range(50)], DIMS)),
        ("POST", "/v1/vectors/a/upsert", batch([f"x{i}" for i in range(25, 75)], DIMS)),  # half of them again
        ("POST", "/v1/vectors/a/delete", {"ids": ["x0", "x30", "x70"]}),
        ("POST", "/v1/vectors/a/upsert", batch(["x0", "x1"], DIMS)),
        ("PUT", "/v1/vectors/b", {"dimensions": DIMS}),
        ("POST", "/v1/vectors/b/upsert", batch(["gone"], DIMS)),
        ("DELETE", "/v1/vectors/b", None),
        ("PUT", "/v1/vectors/b", {"dimensions": 3}),
        ("POST", "/v1/vectors/b/upsert", batch(["y0", "y1"], 3)),
        ("POST", "/v1/vectors/b/upsert", batch(["y1", "y2"], 3)),
    ]

    async def everything(client: httpx.AsyncClient) -> dict[str, object]:
        state: dict[str, object] = {}
        for name, dims in (("a", DIMS), ("b", 3)):
            query = {"vector": [1.0] * dims, "k": 1000, "include_vectors": True}
            matches = (await client.post(f"/v1/vectors/{name}/query", json=query)).json()["matches"]
            state[name] = sorted((m["id"], m["vector"], m["metadata"]) for m in matches)
        return state

    with serve("storaged", config, tmp_path / "storaged.log") as storaged:
        wait_for_http(storaged_url + "/health", storaged, timeout_secs=120)
        with serve("vectord", config, tmp_path / "vectord.log") as vectord:
            await loaded(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                for method, path, body in writes:
                    assert (await client.request(method, path, json=body)).status_code in (200, 201, 204), path
                before = await everything(client)
            vectord.send_signal(signal.SIGKILL)
            assert vectord.wait(timeout=10) == -signal.SIGKILL
        with serve("vectord", config, tmp_path / "vectord.log") as vectord:
            await loaded(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                after = await everything(client)
    assert len(before["a"]) == 73  # type: ignore[arg-type]
    assert [m[0] for m in before["b"]] == ["y0", "y1", "y2"]  # type: ignore[attr-defined]
    assert after == before
