from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.pathwayd.app import create_app as create_pathwayd
from shared.registry import names, service
from shared.telemetry.metrics import MULTIPROCESS_ENV, multiprocess_dir
from shared.web.app import service_app
from tests.support.fixtures import ConfigFactory
from tests.support.servers import app_client


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, parsed by prometheus-client's own parser: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_total(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (name, got), v in parsed.items() if name == "lakehouse_http_requests_total" and wanted <= got)


async def test_requests_counted_by_route_template_never_raw_path(make_config: ConfigFactory) -> None:
    async with app_client(create_pathwayd(make_config())) as client:
        for i in range(3):
            await client.get(f"/v1/pathway/traces/missing-{i}")
        await client.post("/v1/pathway/traces", json={"kind": "k", "steps": []})
        await client.get("/no/such/path")
        await client.request("BREW", "/v1/pathway/stats")
        scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    parsed = samples(scrape.text)
    labels = {"service": "pathwayd", "method": "GET", "status": "404"}
    assert requests_total(parsed, route="/v1/pathway/traces/{id}", **labels) == 3
    assert requests_total(parsed, route="/v1/pathway/traces", method="POST", status="201") == 1
    assert requests_total(parsed, route="unmatched", status="404") == 1
    assert requests_total(parsed, route="/v1/pathway/stats", method="other") == 1
    assert not any("missing-" in value for _, got in parsed for _, value in got)
    count = (
        "lakehouse_http_request_duration_seconds_count",
        frozenset({("route", "/v1/pathway/traces/{id}"), *labels.items()}),
    )
    assert parsed[count] == 3


async def test_metrics_needs_the_token_like_any_route(make_config: ConfigFactory) -> None:
    app = service_app("catalogd", make_config(auth={"token": "s3cret"}), [])
    async with app_client(app) as client:
        anonymous = await client.get("/metrics")
        health = await client.get("/health")
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert anonymous.status_code == 401
    assert health.status_code == 200
    assert allowed.status_code == 200
    # Refused before routing, so it has no route template.
    assert requests_total(samples(allowed.text), route="unmatched", status="401") == 1


@pytest.mark.parametrize("name", names())
async def test_every_service_and_the_gateway_answer_metrics(make_config: ConfigFactory, name: str) -> None:
    # No storaged here: vectord without persistence is ready at once (with it, /health says "loading" until loaded).
    async with app_client(service(name).app(make_config(vectord={"storaged_url": ""}))) as client:
        await client.get("/health")
        scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    assert requests_total(samples(scrape.text), service=name, route="/health", status="200") == 1


def test_multiprocess_dir_is_removed_and_sweeps_dirs_of_killed_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f"lakehouse-metrics-{gone.pid}-abc"
    live = tmp_path / f"lakehouse-metrics-{os.getpid()}-def"
    stale.mkdir()
    live.mkdir()
    with multiprocess_dir() as path:
        assert os.environ[MULTIPROCESS_ENV] == path
        assert Path(path).parent == tmp_path
        assert not stale.exists()
        assert live.exists()  # its process still runs: not ours to remove
    assert not Path(path).exists()
    assert MULTIPROCESS_ENV not in os.environ
