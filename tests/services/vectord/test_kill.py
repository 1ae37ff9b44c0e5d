"""kill -9 of a real vectord process under write load: every acknowledged change is there after a restart."""

from __future__ import annotations

import asyncio
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

DIMS = 16


@contextmanager
def serve(name: str, config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.stack.cli", "serve", name, "--config", str(config)], stdout=out, stderr=out
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


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    storaged_port, vectord_port = free_ports(2)
    config = tmp_path / "lakehouse.toml"
    config.write_text(
        f'[storaged]\nbind = "127.0.0.1:{storaged_port}"\nbackend = "local"\nroot = "{tmp_path / "objects"}"\n'
        f'[vectord]\nbind = "127.0.0.1:{vectord_port}"\nstoraged_url = "http://127.0.0.1:{storaged_port}"\n'
        # small, so checkpoints (snapshot + log trim) happen during the run and the restart reads both
        "snapshot_bytes = 6000\n"
    )
    url = f"http://127.0.0.1:{vectord_port}"
    acked: set[str] = set()
    deleted: set[str] = set()
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
    assert acked - deleted <= present, sorted(acked - deleted - present)[:10]
    assert not (deleted & present)
