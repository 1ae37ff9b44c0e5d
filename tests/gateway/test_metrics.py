"""The gateway's /metrics with several worker processes: counters add up across them, per family."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from scripts.net import free_port, wait_for_http
from tests.support.fakes.echo import EchoUpstream
from tests.support.processes import until_every_worker_answers, workers_answered
from tests.support.servers import run_server

WORKERS = 2
FORWARDED = 60
REFUSED = 7


def totals(text: str, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and wanted <= set(sample.labels.items())
    )


def start_gateway(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "serve", "gateway"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_dirs(root: Path) -> list[Path]:
    return list(root.glob("lakehouse-metrics-*"))


async def test_counters_add_up_across_gateway_workers(tmp_path: Path) -> None:
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    async with run_server(EchoUpstream(name="storaged")) as upstream:
        env = {
            **os.environ,
            "TMPDIR": str(tmp_path),  # where the per-run metrics directory goes, so the test can see it go away
            "LH_CONFIG": "/dev/null/none.toml",
            "LH_GATEWAY__BIND": f"127.0.0.1:{port}",
            "LH_GATEWAY__WORKERS": str(WORKERS),
            "LH_GATEWAY__STORAGED_URL": upstream,
            "LH_GATEWAY__CATALOGD_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: 502
            "LH_AUTH__TOKEN": "tok",
        }
        gateway_process = start_gateway(env)
        try:
            await asyncio.to_thread(wait_for_http, gateway + "/health", gateway_process, timeout_secs=120)
            # /health is no family's: the counts below are the families' alone.
            await asyncio.to_thread(until_every_worker_answers, gateway, tmp_path, WORKERS)
            auth = {"Authorization": "Bearer tok"}
            # No keep-alive: a new connection per request, so the kernel hands them to both workers.
            fresh = httpx.Limits(max_keepalive_connections=0)
            scrapes = []
            async with httpx.AsyncClient(base_url=gateway, headers=auth, limits=fresh) as client:
                for i in range(FORWARDED):
                    assert (await client.get(f"/v1/storage/objects/{i}")).status_code == 200
                for _ in range(REFUSED):
                    assert (await client.get("/v1/catalog/datasets")).status_code == 502
                assert len(run_dirs(tmp_path)) == 1  # one directory for the run
                assert len(workers_answered(tmp_path)) == WORKERS  # both workers counted requests
                for _ in range(6):
                    scrapes.append((await client.get("/metrics")).text)
                    assert (await client.get("/metrics", headers={"Authorization": ""})).status_code == 401
        finally:
            gateway_process.send_signal(signal.SIGTERM)
            gateway_process.wait(timeout=15)
    for text in scrapes:
        # Whichever worker answered the scrape, the totals are the whole gateway's.
        name = "lakehouse_http_requests_total"
        storage = totals(text, name, service="gateway", family="storage", route="/v1/storage/{path:path}")
        assert storage == FORWARDED
        assert totals(text, name, family="catalog", status="502") == REFUSED
        assert totals(text, "lakehouse_gateway_upstream_errors_total", family="catalog", kind="unavailable") == REFUSED
        assert totals(text, "lakehouse_http_request_duration_seconds_count", family="storage") == FORWARDED
    assert not run_dirs(tmp_path)  # the run's directory is removed when the gateway stops
