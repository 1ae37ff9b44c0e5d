"""kill -9 in the middle of a load: after the restart every acknowledged op is there, and nothing that was not sent."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from scripts.net import free_port, wait_for_http

WRITERS = 8
KILL_AFTER_ACKS = 300
# Generous: the machine running the suite may be busy; a start is waited for, never timed.
STARTUP_SECS = 120


def start(path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LH_CONFIG": "/dev/null/none.toml",
        "LH_OBSERVERD__BIND": f"127.0.0.1:{port}",
        "LH_OBSERVERD__PERSIST_PATH": str(path),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "serve", "observerd"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def op(n: int) -> dict[str, Any]:
    return {"service": "load", "op": "write", "status": "ok", "duration_ms": 1.0, "attrs": {"n": n}}


async def hammer(url: str, process: subprocess.Popen[bytes]) -> tuple[set[int], list[list[int]]]:
    """Writers post single ops and batches of three until the server dies; returns what was acknowledged
    and every batch that was sent (acknowledged or not)."""
    acked: set[int] = set()
    sent: list[list[int]] = []
    counter = iter(range(10**9))
    killed = asyncio.Event()

    async def writer(client: httpx.AsyncClient, batches: bool) -> None:
        while not killed.is_set() or len(acked) < KILL_AFTER_ACKS:
            numbers = [next(counter) for _ in range(3 if batches else 1)]
            sent.append(numbers)
            body: Any = {"ops": [op(n) for n in numbers]} if batches else op(numbers[0])
            try:
                response = await client.post(url + "/v1/observer/ops", json=body)
            except httpx.TransportError:
                return
            assert response.status_code == 201, response.text
            acked.update(numbers)
            if len(acked) >= KILL_AFTER_ACKS and not killed.is_set():
                # The other writers still have requests in flight: the kill lands mid-load.
                process.send_signal(signal.SIGKILL)
                killed.set()

    limits = httpx.Limits(max_connections=WRITERS)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        await asyncio.gather(*(writer(client, batches=i % 2 == 1) for i in range(WRITERS)))
    return acked, sent


async def read_all(url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = 0
    async with httpx.AsyncClient() as client:
        while True:
            page = (await client.get(url + "/v1/observer/ops", params={"after": after, "limit": 1000})).json()
            items += page["items"]
            if page["next"] is None:
                return items
            after = page["next"]


async def test_kill_9_mid_load_loses_no_acknowledged_op(tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(path, port)
    try:
        await asyncio.to_thread(wait_for_http, url + "/health", process, timeout_secs=STARTUP_SECS)
        acked, sent = await hammer(url, process)
        assert process.wait(timeout=10) == -signal.SIGKILL
        process = start(path, port)
        await asyncio.to_thread(wait_for_http, url + "/health", process, timeout_secs=STARTUP_SECS)
        items = await read_all(url)
    finally:
        process.kill()
        process.wait()
    stored = [item["attrs"]["n"] for item in items]
    assert [item["seq"] for item in items] == list(range(1, len(items) + 1))
    assert len(stored) == len(set(stored))  # nothing twice
    assert acked <= set(stored)  # every acknowledged op survived
    every_sent = {n for batch in sent for n in batch}
    assert set(stored) <= every_sent  # nothing that was never sent
    for batch in sent:
        # A batch is atomic on disk too: all of it or none of it.
        assert len(set(batch) & set(stored)) in (0, len(batch))
