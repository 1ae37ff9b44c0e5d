"""The one big test the issue asks for: 300 MiB streamed in and out, direct and via the gateway, in bounded memory."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from gateway.app import create_app as create_gateway
from scripts.net import free_port, wait_for_http
from shared.config import load_config
from tests.support.servers import run_server

MIB = 1 << 20
SIZE = 300 * MIB
BLOCK = bytes(range(256)) * 4096  # 1 MiB, not all one byte
RSS_GROWTH_LIMIT = 64 * MIB


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


async def body() -> AsyncIterator[bytes]:
    for _ in range(SIZE // MIB):
        yield BLOCK


def expected_md5() -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for _ in range(SIZE // MIB):
        digest.update(BLOCK)
    return digest.hexdigest()


async def round_trip(http: httpx.AsyncClient, url: str) -> tuple[int, str]:
    put = await http.put(url, content=body(), headers={"content-type": "application/x-big"})
    assert put.status_code == 201, put.text
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    async with http.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(SIZE)
        async for chunk in response.aiter_raw():
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def spawn_storaged(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LH_")}
    env |= {
        "LH_STORAGED__BIND": f"127.0.0.1:{port}",
        "LH_STORAGED__ROOT": str(root),
        "LH_STORAGED__MAX_PUT_BYTES": str(SIZE + MIB),
        "LH_LOG__LEVEL": "warning",
    }
    return subprocess.Popen([sys.executable, "-m", "shared.stack.cli", "serve", "storaged"], env=env)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


async def test_300_mib_streams_direct_and_through_the_gateway_in_bounded_memory(tmp_path: Path) -> None:
    port = free_port()
    storaged = spawn_storaged(tmp_path / "objects", port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", storaged)
        config = load_config(gateway={"storaged_url": url})
        async with run_server(create_gateway(config)) as gateway, httpx.AsyncClient(timeout=120) as http:
            # Warm up (imports, first thread pool use) before taking the baseline.
            await http.put(f"{url}/v1/storage/objects/warm", content=BLOCK * 2)
            await http.get(f"{url}/v1/storage/objects/warm")
            baseline = peak_rss(storaged.pid)
            direct = await round_trip(http, f"{url}/v1/storage/objects/big/direct.bin")
            proxied = await round_trip(http, f"{gateway}/v1/storage/objects/big/gateway.bin")
            growth = peak_rss(storaged.pid) - baseline
    finally:
        stop(storaged)
    md5 = expected_md5()
    assert direct == (SIZE, md5)
    assert proxied == (SIZE, md5)
    assert (tmp_path / "objects" / "big" / "gateway.bin").stat().st_size == SIZE
    assert growth < RSS_GROWTH_LIMIT, f"storaged's peak RSS grew by {growth / MIB:.1f} MiB"
