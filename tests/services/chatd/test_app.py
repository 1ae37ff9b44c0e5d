from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import JSONResponse, Response
from structlog.testing import capture_logs

from services.chatd.app import create_app
from services.chatd.builder import build_registry
from shared.config import load_config
from tests.support.fixtures import Upstream
from tests.support.servers import app_client, free_port

NO_KEY_FILES = {
    f"{name}_key_file": "/nonexistent/lakehouse-test.env" for name in ("ollama_cloud", "openrouter", "opencode", "kimi")
}
HI = [{"role": "user", "content": "hello there"}]


@asynccontextmanager
async def chatd(**chatd_config: Any) -> AsyncIterator[httpx.AsyncClient]:
    config = load_config(chatd={**NO_KEY_FILES, **chatd_config})
    async with app_client(create_app(config)) as client:
        yield client


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OLLAMA_CLOUD_KEY", "OPENROUTER_API_KEY", "OPENCODE_API_KEY", "KIMI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


async def test_bare_model_goes_to_local_ollama(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "provider": "ollama",
        "model": "qwen3.5:latest",
        "content": "echo: hello there",
        "finish_reason": "stop",
        "prompt_tokens": 2,
        "completion_tokens": 3,
        "latency_ms": body["latency_ms"],
    }
    assert body["latency_ms"] > 0
    (sent,) = ollama_upstream.fake.received
    assert sent.path == "/api/chat"
    assert sent.body == {"model": "qwen3.5:latest", "messages": HI, "stream": False, "think": False}
    assert sent.headers["user-agent"].startswith("lakehouse-chatd/")


async def test_prefix_is_stripped_and_options_mapped(ollama_upstream: Upstream) -> None:
    request = {"model": "ollama/qwen3:latest", "messages": HI, "max_tokens": 2, "format": "json", "think": True}
    async with chatd(ollama_url=ollama_upstream.url) as client:
        body = (await client.post("/v1/chat", json=request)).json()
    assert (body["model"], body["content"], body["finish_reason"]) == ("qwen3:latest", "echo: hello", "length")
    sent = ollama_upstream.fake.received[0].body
    assert (sent["model"], sent["think"], sent["format"], sent["options"]) == (
        "qwen3:latest",
        True,
        "json",
        {"num_predict": 2},
    )


async def test_cloud_suffix_uses_generate_with_bearer(
    ollama_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_CLOUD_KEY", "cloud-key-9")
    messages = [{"role": "system", "content": "be brief"}, *HI]
    async with chatd(ollama_url="", ollama_cloud_url=ollama_upstream.url) as client:
        body = (await client.post("/v1/chat", json={"model": "kimi-k2.6:cloud", "messages": messages})).json()
    assert (body["provider"], body["model"], body["content"]) == ("ollama_cloud", "kimi-k2.6", "echo: hello there")
    (sent,) = ollama_upstream.fake.received
    assert sent.path == "/api/generate"
    assert sent.headers["authorization"] == "Bearer cloud-key-9"
    assert (sent.body["system"], sent.body["prompt"], sent.body["think"]) == ("be brief", "hello there", False)


@pytest.mark.parametrize(
    ("provider", "model", "upstream_model"),
    [
        ("openrouter", "openrouter/anthropic/claude-opus-4-7", "anthropic/claude-opus-4-7"),
        ("opencode", "opencode/kimi-k2.6", "kimi-k2.6"),
        ("kimi", "kimi/kimi-k2.6", "kimi-k2.6"),
    ],
)
async def test_openai_family(
    openai_upstream: Upstream, monkeypatch: pytest.MonkeyPatch, provider: str, model: str, upstream_model: str
) -> None:
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", "or-key-123")
    request = {"model": model, "messages": HI, "format": "json", "temperature": 0.5}
    async with chatd(**{f"{provider}_url": openai_upstream.url}) as client:
        response = await client.post("/v1/chat", json=request)
    body = response.json()
    assert response.status_code == 200, body
    assert (body["provider"], body["model"], body["content"]) == (provider, upstream_model, "echo: hello there")
    assert (body["prompt_tokens"], body["completion_tokens"], body["finish_reason"]) == (2, 3, "stop")
    (sent,) = openai_upstream.fake.received
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == "Bearer or-key-123"
    assert sent.body["response_format"] == {"type": "json_object"}
    assert sent.body["temperature"] == 0.5


async def test_key_from_env_file_registers_the_provider(openai_upstream: Upstream, tmp_path: Path) -> None:
    key_file = tmp_path / "openrouter.env"
    key_file.write_text("# lakehouse\nexport OPENROUTER_API_KEY='or-key-123'\n")
    async with chatd(openrouter_url=openai_upstream.url, openrouter_key_file=str(key_file), ollama_url="") as client:
        listing = (await client.get("/v1/chat/providers")).json()
        response = await client.post("/v1/chat", json={"model": "openrouter/anthropic/claude-opus-4-7", "messages": HI})
    assert [p["name"] for p in listing["providers"]] == ["openrouter"]
    assert response.status_code == 200
    assert "or-key-123" not in json.dumps(listing)


async def test_providers_lists_exactly_the_registered_with_counters(
    ollama_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIMI_API_KEY", "k")
    async with chatd(ollama_url=ollama_upstream.url, kimi_url="http://127.0.0.1:9") as client:
        await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI})
        await client.post("/v1/chat", json={"model": "missing-model", "messages": HI})
        listing = (await client.get("/v1/chat/providers")).json()
    assert listing == {
        "providers": [
            {"name": "ollama", "default": True, "requests": 2, "errors": 1, "cooldown_until": None},
            {"name": "kimi", "default": False, "requests": 0, "errors": 0, "cooldown_until": None},
        ]
    }


async def test_unregistered_provider_is_404_not_a_fall_through(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post("/v1/chat", json={"model": "kimi-k2.6:cloud", "messages": HI})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "provider_not_registered"
    assert "ollama_cloud" in error["message"]
    assert "OLLAMA_CLOUD_KEY" in error["message"]
    assert ollama_upstream.fake.received == []


async def test_no_ollama_url_means_default_is_unregistered() -> None:
    async with chatd(ollama_url="") as client:
        response = await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI})
        listing = (await client.get("/v1/chat/providers")).json()
    assert response.status_code == 404
    assert "chatd.ollama_url is empty" in response.json()["error"]["message"]
    assert listing == {"providers": []}


async def test_unknown_prefix_reaches_default_unchanged_and_502s(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post("/v1/chat", json={"model": "unknown/qwen3.5:latest", "messages": HI})
    assert response.status_code == 502
    assert response.json()["error"] == {
        "code": "upstream_error",
        "message": "ollama: answered 404: model 'unknown/qwen3.5:latest' not found",
    }
    assert ollama_upstream.fake.received[0].body["model"] == "unknown/qwen3.5:latest"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"messages": HI}, "model: Field required"),
        ({"model": "", "messages": HI}, "model: String should have at least 1 character"),
        ({"model": "m"}, "messages: Field required"),
        ({"model": "m", "messages": []}, "messages: List should have at least 1 item"),
        ({"model": 3, "messages": HI}, "model: Input should be a valid string"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role: Input should be"),
        ({"model": "m", "messages": HI, "max_tokens": "10"}, "max_tokens: Input should be a valid integer"),
        ({"model": "m", "messages": HI, "think": "yes"}, "think: Input should be a valid boolean"),
        ({"model": "m", "messages": HI, "tools": []}, "tools: unknown field"),
        ({"model": "m", "messages": HI, "format": "xml"}, "format: Input should be 'json'"),
    ],
)
async def test_bad_requests_are_400(ollama_upstream: Upstream, body: dict[str, Any], expected: str) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post("/v1/chat", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert expected in response.json()["error"]["message"]
    assert ollama_upstream.fake.received == []


async def test_malformed_json_is_400(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post(
            "/v1/chat", content=b'{"model": "m", ', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Invalid JSON")


async def scripted(
    upstream: Upstream, answer: Response, model: str = "qwen3.5:latest", **config: Any
) -> httpx.Response:
    upstream.fake.script.append(answer)
    async with chatd(ollama_url=upstream.url, **config) as client:
        return await client.post("/v1/chat", json={"model": model, "messages": HI})


async def test_upstream_429_passes_retry_after(ollama_upstream: Upstream) -> None:
    answer = JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "17"})
    response = await scripted(ollama_upstream, answer)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "17"
    assert response.json()["error"] == {
        "code": "rate_limited",
        "message": "ollama: rate limited the request (429): slow down",
    }


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (JSONResponse({"error": "boom"}, status_code=500), "ollama: answered 500: boom"),
        (Response("<html>bad gateway</html>", status_code=503), "ollama: answered 503"),
        (JSONResponse({"error": "unauthorized"}, status_code=401), "ollama: answered 401: unauthorized"),
        (Response("not json", status_code=200), "ollama: answered 200 with a body that is not JSON"),
        (JSONResponse({"message": "no content"}), "ollama: answered 200 but no text content in the response"),
        (JSONResponse(["a list"]), "ollama: answered 200 but unexpected response shape"),
    ],
)
async def test_upstream_failures_are_502(ollama_upstream: Upstream, answer: Response, message: str) -> None:
    response = await scripted(ollama_upstream, answer)
    assert response.status_code == 502
    assert response.json()["error"] == {"code": "upstream_error", "message": message}


async def test_zero_choices_is_502(openai_upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCODE_API_KEY", "or-key-123")
    openai_upstream.fake.script.append(JSONResponse({"choices": []}))
    async with chatd(opencode_url=openai_upstream.url) as client:
        response = await client.post("/v1/chat", json={"model": "opencode/kimi-k2.6", "messages": HI})
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "opencode: answered 200 but the response has zero choices"


async def test_wrong_key_is_502_and_never_echoed(openai_upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "wrong-key-456")
    openai_upstream.fake.script.append(JSONResponse({"error": {"message": "bad key wrong-key-456"}}, status_code=401))
    async with chatd(openrouter_url=openai_upstream.url) as client:
        with capture_logs() as logs:
            response = await client.post("/v1/chat", json={"model": "openrouter/a/b", "messages": HI})
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "openrouter: answered 401: bad key ***"
    assert "wrong-key-456" not in repr(logs)


async def test_connection_refused_is_502_unavailable() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with chatd(ollama_url=dead) as client:
        response = await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI})
    assert response.status_code == 502
    assert response.json()["error"] == {
        "code": "upstream_unavailable",
        "message": f"ollama: cannot connect to {dead}: Connection refused",
    }


async def test_timeout_is_504(ollama_upstream: Upstream) -> None:
    ollama_upstream.fake.delay_secs = 1.5
    async with chatd(ollama_url=ollama_upstream.url, timeout_secs=1) as client:
        response = await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI})
    assert response.status_code == 504
    assert response.json()["error"] == {"code": "upstream_timeout", "message": "ollama: no answer within 1s"}


def test_zero_timeout_means_180_seconds() -> None:
    registry = build_registry(load_config(chatd={"timeout_secs": 0}).chatd, {})
    assert registry.providers["ollama"].timeout_secs == 180


async def test_one_log_line_per_dispatched_call(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        with capture_logs() as logs:
            await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI})
    (line,) = [entry for entry in logs if entry["event"] == "chat"]
    assert {k: line[k] for k in ("provider", "model", "status", "prompt_tokens", "completion_tokens")} == {
        "provider": "ollama",
        "model": "qwen3.5:latest",
        "status": "ok",
        "prompt_tokens": 2,
        "completion_tokens": 3,
    }


async def test_health() -> None:
    async with chatd() as client:
        assert (await client.get("/health")).json() == {"status": "ok", "service": "chatd"}


def chat_samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name.startswith("lakehouse_chat_")
    }


async def test_metrics_count_calls_and_tokens_per_provider(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        for _ in range(2):
            assert (await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI})).status_code == 200
        samples = chat_samples((await client.get("/metrics")).text)
    assert samples[("lakehouse_chat_requests_total", (("provider", "ollama"),))] == 2
    assert samples[("lakehouse_chat_tokens_total", (("kind", "prompt"), ("provider", "ollama")))] == 4
    assert samples[("lakehouse_chat_tokens_total", (("kind", "completion"), ("provider", "ollama")))] == 6
    assert not [key for key in samples if key[0] == "lakehouse_chat_errors_total"]


async def test_metrics_count_errors_per_provider_and_code() -> None:
    async with chatd(ollama_url=f"http://127.0.0.1:{free_port()}") as client:
        response = await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI})
        assert response.status_code == 502
        samples = chat_samples((await client.get("/metrics")).text)
    assert samples[("lakehouse_chat_requests_total", (("provider", "ollama"),))] == 1
    errors = (("code", "upstream_unavailable"), ("provider", "ollama"))
    assert samples[("lakehouse_chat_errors_total", errors)] == 1
