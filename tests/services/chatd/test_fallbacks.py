"""Tiers, fallback chains and cooldown: which candidate answers, which are skipped, and why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import pytest
from starlette.responses import JSONResponse, Response
from structlog.testing import capture_logs

from scripts.net import free_port
from tests.services.chatd.harness import HI, KEY_VARS, chatd, ndjson_lines
from tests.support.fakes import ollama
from tests.support.fakes.recorder import FakeUpstream
from tests.support.fixtures import Upstream
from tests.support.servers import run_server

CLOUD = "kimi-k2.6:cloud"  # → ollama_cloud, /api/generate
LOCAL = "ollama/qwen3.5:latest"  # → ollama, /api/chat


@pytest.fixture(autouse=True)
def provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_CLOUD_KEY", "cloud-key-9")


@pytest.fixture
async def cloud() -> AsyncIterator[Upstream]:
    """A second Ollama-protocol fake, playing Ollama Cloud."""
    fake = FakeUpstream()
    async with run_server(ollama.create_app(fake)) as url:
        yield Upstream(fake, url)


def paths(upstream: Upstream) -> list[str]:
    return [r.path for r in upstream.fake.received]


async def test_tier_name_resolves_through_models_config(ollama_upstream: Upstream) -> None:
    models = {"local_fast": "ollama/qwen3:latest"}
    async with chatd(ollama_url=ollama_upstream.url, models=models) as client:
        native = await client.post("/v1/chat", json={"model": "local_fast", "messages": HI})
        openai = await client.post("/v1/chat/completions", json={"model": "local_fast", "messages": HI})
    assert (native.json()["model"], native.headers["x-lakehouse-model"]) == ("qwen3:latest", "ollama/qwen3:latest")
    assert openai.json()["model"] == "ollama/qwen3:latest"
    assert [r.body["model"] for r in ollama_upstream.fake.received] == ["qwen3:latest", "qwen3:latest"]


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions"])
async def test_empty_tier_is_400_naming_the_key_to_set(ollama_upstream: Upstream, path: str) -> None:
    async with chatd(ollama_url=ollama_upstream.url, models={"cloud_strong": ""}) as client:
        response = await client.post(path, json={"model": "cloud_strong", "messages": HI})
    assert response.status_code == 400
    assert "set [models] cloud_strong" in response.json()["error"]["message"]
    assert ollama_upstream.fake.received == []


@pytest.mark.parametrize(
    "answer",
    [
        JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "5"}),
        JSONResponse({"error": "boom"}, status_code=500),
        Response("bad gateway", status_code=503),
        Response("not json", status_code=200),
    ],
)
async def test_falls_back_on_429_5xx_and_broken_answers(
    ollama_upstream: Upstream, cloud: Upstream, answer: Response
) -> None:
    cloud.fake.script.append(answer)
    async with chatd(ollama_url=ollama_upstream.url, ollama_cloud_url=cloud.url) as client:
        with capture_logs() as logs:
            response = await client.post("/v1/chat", json={"model": CLOUD, "messages": HI, "fallbacks": [LOCAL]})
    assert response.status_code == 200, response.text
    assert (response.json()["provider"], response.headers["x-lakehouse-model"]) == ("ollama", LOCAL)
    assert (paths(cloud), paths(ollama_upstream)) == (["/api/generate"], ["/api/chat"])
    (line,) = [entry for entry in logs if entry["event"] == "chat"]
    assert line["attempts"][1] == f"{LOCAL}: ok"
    assert line["attempts"][0].startswith(f"{CLOUD}: ")


async def test_falls_back_when_unreachable_or_unregistered(ollama_upstream: Upstream) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    chain = {"model": CLOUD, "messages": HI, "fallbacks": ["openrouter/a/b", LOCAL]}
    async with chatd(ollama_url=ollama_upstream.url, ollama_cloud_url=dead) as client:
        with capture_logs() as logs:
            response = await client.post("/v1/chat", json=chain)
    assert response.status_code == 200
    (line,) = [entry for entry in logs if entry["event"] == "chat"]
    assert line["attempts"] == [
        f"{CLOUD}: upstream_unavailable",
        "openrouter/a/b: provider_not_registered",
        f"{LOCAL}: ok",
    ]


async def test_falls_back_on_timeout_with_attempt_timeout(ollama_upstream: Upstream, cloud: Upstream) -> None:
    cloud.fake.delay_secs = 5
    config = {"ollama_url": ollama_upstream.url, "ollama_cloud_url": cloud.url, "attempt_timeout_secs": 0.3}
    async with chatd(**config) as client:
        response = await client.post("/v1/chat", json={"model": CLOUD, "messages": HI, "fallbacks": [LOCAL]})
    assert response.status_code == 200
    assert response.json()["provider"] == "ollama"


async def test_the_chain_shares_one_budget(ollama_upstream: Upstream, cloud: Upstream) -> None:
    cloud.fake.delay_secs = 5
    config = {"ollama_url": ollama_upstream.url, "ollama_cloud_url": cloud.url, "timeout_secs": 1}
    async with chatd(**config) as client:
        response = await client.post("/v1/chat", json={"model": CLOUD, "messages": HI, "fallbacks": [LOCAL]})
    assert response.status_code == 504
    assert "no answer within the 1s budget" in response.json()["error"]["message"]
    assert ollama_upstream.fake.received == []


@pytest.mark.parametrize(
    "answer",
    [
        JSONResponse({"error": "bad request: num_ctx"}, status_code=400),
        JSONResponse({"error": "model not found"}, status_code=404),
    ],
)
async def test_never_falls_back_on_the_callers_fault(
    ollama_upstream: Upstream, cloud: Upstream, answer: Response
) -> None:
    cloud.fake.script.append(answer)
    async with chatd(ollama_url=ollama_upstream.url, ollama_cloud_url=cloud.url) as client:
        upstream_400 = await client.post("/v1/chat", json={"model": CLOUD, "messages": HI, "fallbacks": [LOCAL]})
        own_400 = await client.post("/v1/chat", json={"model": CLOUD, "messages": [], "fallbacks": [LOCAL]})
    assert upstream_400.status_code == 502
    assert own_400.status_code == 400
    assert ollama_upstream.fake.received == []


async def test_configured_fallbacks_match_the_name_as_requested(ollama_upstream: Upstream) -> None:
    config: dict[str, Any] = {
        "ollama_url": ollama_upstream.url,
        "ollama_cloud_url": "",  # cloud_judge's provider is not registered
        "fallbacks": {"cloud_judge": ["local_judge"]},
        "models": {"cloud_judge": CLOUD, "local_judge": "ollama/qwen3:latest"},
    }
    async with chatd(**config) as client:
        by_tier = await client.post("/v1/chat/completions", json={"model": "cloud_judge", "messages": HI})
        by_model = await client.post("/v1/chat/completions", json={"model": CLOUD, "messages": HI})
        own = await client.post(
            "/v1/chat/completions", json={"model": "cloud_judge", "messages": HI, "fallbacks": [LOCAL]}
        )
    assert by_tier.status_code == 200
    assert by_tier.json()["model"] == "ollama/qwen3:latest"
    assert by_model.status_code == 404  # the key names the tier, not the model it resolves to
    assert own.json()["model"] == LOCAL  # a request's own list replaces the configured one


async def test_all_candidates_failing_lists_what_was_tried(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url="", ollama_cloud_url="") as client:
        response = await client.post("/v1/chat", json={"model": CLOUD, "messages": HI, "fallbacks": [LOCAL]})
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert f"tried {CLOUD} → provider_not_registered, {LOCAL} → provider_not_registered" in message


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions"])
async def test_streams_fall_back_before_the_first_byte(ollama_upstream: Upstream, cloud: Upstream, path: str) -> None:
    cloud.fake.script.append(JSONResponse({"error": "boom"}, status_code=500))
    request = {"model": CLOUD, "messages": HI, "fallbacks": [LOCAL], "stream": True}
    async with chatd(ollama_url=ollama_upstream.url, ollama_cloud_url=cloud.url) as client:
        response = await client.post(path, json=request)
    assert response.status_code == 200
    assert response.headers["x-lakehouse-model"] == LOCAL
    assert "echo: hello there" in response.text or '"content":" there"' in response.text


async def test_streams_do_not_fall_back_after_the_first_byte(ollama_upstream: Upstream, cloud: Upstream) -> None:
    cloud.fake.fail_after_chunks = 1
    cloud.fake.chunk_delay_secs = 0.05
    request = {"model": CLOUD, "messages": HI, "fallbacks": [LOCAL], "stream": True}
    async with chatd(ollama_url=ollama_upstream.url, ollama_cloud_url=cloud.url) as client:
        response = await client.post("/v1/chat", json=request)
    lines = ndjson_lines(response.text)
    assert lines[0] == {"delta": "echo:"}
    assert lines[-1]["error"]["code"] == "upstream_error"
    assert ollama_upstream.fake.received == []


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [("120", 110, 120), (None, 20, 30), ("date", 80, 90)],
)
async def test_cooldown_after_a_429(
    ollama_upstream: Upstream, cloud: Upstream, retry_after: str | None, low: int, high: int
) -> None:
    import time

    headers = {}
    if retry_after == "date":
        headers["Retry-After"] = formatdate(time.time() + 90, usegmt=True)
    elif retry_after is not None:
        headers["Retry-After"] = retry_after
    cloud.fake.script.append(JSONResponse({"error": "slow down"}, status_code=429, headers=headers))
    chain = {"model": CLOUD, "messages": HI, "fallbacks": [LOCAL]}
    async with chatd(ollama_url=ollama_upstream.url, ollama_cloud_url=cloud.url) as client:
        first = await client.post("/v1/chat", json=chain)
        listing = (await client.get("/v1/chat/providers")).json()["providers"]
        second = await client.post("/v1/chat", json=chain)
        direct = await client.post("/v1/chat/completions", json={"model": CLOUD, "messages": HI})
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(cloud.fake.received) == 1  # skipped while cooling down, and not called when asked directly
    cooling = {p["name"]: p["cooldown_until"] for p in listing}
    assert cooling["ollama"] is None
    assert cooling["ollama_cloud"] is not None
    assert cooling["ollama_cloud"].endswith("Z")
    assert direct.status_code == 429
    assert low <= int(direct.headers["retry-after"]) <= high
    error = direct.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limited", "rate_limit_error")
    assert "cooling down" in error["message"]
