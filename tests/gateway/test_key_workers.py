"""A key's requests per minute with `workers = 2`: one limit for the whole gateway, not one per worker, and kept
across a restart of the gateway (the meters are a file in `[gateway] state_dir`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.net import free_port
from tests.support.lake import Lake, running_lake
from tests.support.processes import start_serving, stop_serving, until_every_worker_answers

ROOT = "workers-test-root-token-0123456789"
RPM = 60
WORKERS = 2


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[Lake]:
    with running_lake(tmp_path / "lake", token=ROOT) as running:
        yield running


def start_gateway(lake: Lake, port: int, state: Path, tmp: Path) -> subprocess.Popen[bytes]:
    environ = {
        "TMPDIR": str(tmp),  # the per-run metrics directory: its files say which workers answered
        "LH_AUTH__TOKEN": ROOT,
        "LH_GATEWAY__WORKERS": str(WORKERS),
        "LH_GATEWAY__STATE_DIR": str(state),
        "LH_GATEWAY__STORAGED_URL": lake.config.gateway.upstream_url("storaged"),
    }
    process = start_serving("gateway", port, environ)
    until_every_worker_answers(f"http://127.0.0.1:{port}", tmp, WORKERS)
    return process


def admitted(url: str, secret: str, count: int) -> tuple[int, int]:
    """(200s, 429s) of `count` requests, each on a new connection so the kernel spreads them over the workers."""
    statuses: list[int] = []
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {secret}"}, limits=fresh) as http:
        for _ in range(count):
            response = http.get("/v1/storage/objects", params={"limit": "1"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert "requests per minute" in response.json()["error"]["message"]
    assert set(statuses) <= {200, 429}, statuses
    return statuses.count(200), statuses.count(429)


def test_requests_per_minute_hold_across_workers_and_a_restart(lake: Lake, tmp_path: Path) -> None:
    with lake.http() as http:
        key = http.post("/v1/keys", json={"name": "rpm", "scopes": ["storage:read"], "rpm": RPM}).json()
    port, state = free_port(), tmp_path / "gateway-state"
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    gateway = start_gateway(lake, port, state, tmp_path)
    try:
        first, refused = admitted(url, key["secret"], RPM + RPM // 2)
    finally:
        stop_serving(gateway)
    gateway = start_gateway(lake, port, state, tmp_path)
    try:
        after, _ = admitted(url, key["secret"], RPM // 2)
    finally:
        stop_serving(gateway)
    elapsed = time.monotonic() - started
    allowed = RPM + RPM / 60 * elapsed  # the bucket, and what refilled it meanwhile
    assert refused > 0
    assert RPM * 0.9 <= first <= allowed * 1.1
    assert first + after <= allowed * 1.1  # the restart did not give the key a fresh minute
