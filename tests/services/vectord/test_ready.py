"""Ready means served: a vectord replaying a 20,000-vector log says `loading` on /health until its API answers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from contextlib import suppress
from pathlib import Path

import httpx
import numpy as np

from scripts.net import free_ports, wait_for_http
from tests.services.vectord.test_kill import DIMS, loaded, serve

VECTORS = 20_000
BATCH = 1_000


async def test_health_is_loading_while_the_log_replays(tmp_path: Path) -> None:
    storaged_port, vectord_port = free_ports(2)
    config = tmp_path / "lakehouse.toml"
    config.write_text(
        f'[storaged]\nbind = "127.0.0.1:{storaged_port}"\nbackend = "local"\nroot = "{tmp_path / "objects"}"\n'
        f'[vectord]\nbind = "127.0.0.1:{vectord_port}"\nstoraged_url = "http://127.0.0.1:{storaged_port}"\n'
        # No checkpoint: the restart replays every upsert from the log, the slow start an operator meets.
        f"snapshot_bytes = {1 << 40}\n"
    )
    url = f"http://127.0.0.1:{vectord_port}"
    vectors = np.random.default_rng(0).standard_normal((VECTORS, DIMS)).tolist()
    answers: list[tuple[int, str, int]] = []  # (/health status, its "status", then /v1/vectors status)
    notified: list[bytes] = []  # what vectord sent systemd's notify socket
    served_when_notified = 0

    with serve("storaged", config, tmp_path / "storaged.log") as storaged:
        wait_for_http(f"http://127.0.0.1:{storaged_port}/health", storaged, timeout_secs=120)
        with serve("vectord", config, tmp_path / "vectord.log") as vectord:
            await loaded(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                assert (await client.put("/v1/vectors/k", json={"dimensions": DIMS})).status_code == 201
                for start in range(0, VECTORS, BATCH):
                    items = [{"id": f"v{i}", "vector": vectors[i]} for i in range(start, start + BATCH)]
                    assert (await client.post("/v1/vectors/k/upsert", json={"items": items})).status_code == 200
            # No clean shutdown, so nothing is checkpointed on the way out either.
            os.kill(vectord.pid, signal.SIGKILL)
            assert vectord.wait(timeout=10) == -signal.SIGKILL
        # Run as systemd would run it (Type=notify): READY=1 must wait for the replay too.
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp_path / "notify.sock"))
        notify.setblocking(False)
        with (
            notify,
            serve(
                "vectord", config, tmp_path / "vectord.log", {"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
            ) as vectord,
        ):
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                # Until both answer 200: the API may turn ready between a /health probe and the listing after it.
                deadline = time.monotonic() + 180
                while not answers or answers[-1][0] != 200 or answers[-1][2] != 200 or not notified:
                    assert vectord.poll() is None, "vectord exited while loading"
                    assert time.monotonic() < deadline, f"no READY=1 and ok within 180 s: {answers[-3:]}"
                    with suppress(BlockingIOError):
                        notified.append(notify.recv(256))
                        # The moment systemd would call it ready, the API serves.
                        served_when_notified = (await client.get("/v1/vectors")).status_code
                    try:
                        health = await client.get("/health")
                        listing = await client.get("/v1/vectors")
                    except httpx.TransportError:
                        await asyncio.sleep(0.02)  # not listening yet
                        continue
                    answers.append((health.status_code, health.json()["status"], listing.status_code))
                    await asyncio.sleep(0.02)
                count = (await client.get("/v1/vectors/k")).json()["count"]
    assert count == VECTORS
    assert notified[0].split(b"\n")[0] == b"READY=1"
    assert served_when_notified == 200
    # The replay was seen: vectord served requests before it could answer them.
    assert any(vectors_status == 503 for _, _, vectors_status in answers), answers[:5]
    for health_status, status, vectors_status in answers:
        if vectors_status == 503:
            assert (health_status, status) == (503, "loading"), answers
    # Once /health says ok, it stays so: no 503 from the API after it.
    first_ok = next(i for i, (h, _, _) in enumerate(answers) if h == 200)
    assert all(v == 200 for _, _, v in answers[first_ok:]), answers[first_ok:]
