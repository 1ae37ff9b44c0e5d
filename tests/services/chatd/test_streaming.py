from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse

from tests.services.chatd.harness import HI, KEY_VARS, chatd, chatd_server, eventually, ndjson_lines, sse_events
from tests.support.fixtures import Upstream

LONG = [{"role": "user", "content": " ".join(f"w{i}" for i in range(200))}]


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


async def test_native_stream_is_ndjson_deltas_then_the_native_fields(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert (response.headers["x-lakehouse-provider"], response.headers["x-lakehouse-model"]) == (
        "ollama",
        "ollama/qwen3.5:latest",
    )
    *deltas, final = ndjson_lines(response.text)
    assert [d["delta"] for d in deltas] == ["echo:", " hello", " there"]
    assert final == {
        "provider": "ollama",
        "model": "qwen3.5:latest",
        "content": "echo: hello there",
        "finish_reason": "stop",
        "prompt_tokens": 2,
        "completion_tokens": 3,
        "latency_ms": final["latency_ms"],
        "done": True,
    }
    (sent,) = ollama_upstream.fake.received
    assert (sent.path, sent.body["stream"]) == ("/api/chat", True)


async def test_native_stream_passes_thinking_as_reasoning(ollama_upstream: Upstream) -> None:
    request = {"model": "qwen3.5:latest", "messages": HI, "stream": True, "think": True}
    async with chatd(ollama_url=ollama_upstream.url) as client:
        lines = ndjson_lines((await client.post("/v1/chat", json=request)).text)
    assert lines[0] == {"delta": "", "reasoning": "the user wants an echo"}
    assert lines[-1]["content"] == "echo: hello there"


async def test_openai_stream_chunks_role_first_finish_last_then_usage_and_done(ollama_upstream: Upstream) -> None:
    request = {"model": "qwen3.5:latest", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post("/v1/chat/completions", json=request)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "ollama/qwen3.5:latest" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "echo:"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: hello there"
    assert chunks[-2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


async def test_openai_stream_without_include_usage_has_no_usage_chunk(ollama_upstream: Upstream) -> None:
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "qwen3.5:latest", "messages": HI, "stream": True}
        )
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert all(e["choices"] for e in events[:-1])


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions"])
async def test_openai_family_upstream_is_streamed_with_usage_asked_for(
    openai_upstream: Upstream, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "or-key-123")
    request: dict[str, Any] = {"model": "openrouter/anthropic/claude-opus-4-7", "messages": HI, "stream": True}
    async with chatd(openrouter_url=openai_upstream.url) as client:
        response = await client.post(path, json=request)
    assert response.status_code == 200, response.text
    (sent,) = openai_upstream.fake.received
    assert (sent.body["stream"], sent.body["stream_options"]) == (True, {"include_usage": True})
    if path == "/v1/chat":
        final = ndjson_lines(response.text)[-1]
        assert (final["content"], final["prompt_tokens"], final["completion_tokens"]) == ("echo: hello there", 2, 3)
    else:
        chunks = sse_events(response.text)[:-1]
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "echo: hello there"
        assert chunks[0]["model"] == "openrouter/anthropic/claude-opus-4-7"


async def test_ollama_cloud_generate_is_streamed(ollama_upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_CLOUD_KEY", "cloud-key-9")
    async with chatd(ollama_url="", ollama_cloud_url=ollama_upstream.url) as client:
        response = await client.post("/v1/chat", json={"model": "kimi-k2.6:cloud", "messages": HI, "stream": True})
    final = ndjson_lines(response.text)[-1]
    assert (final["provider"], final["model"], final["content"]) == ("ollama_cloud", "kimi-k2.6", "echo: hello there")
    assert ollama_upstream.fake.received[0].path == "/api/generate"


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions"])
async def test_first_token_reaches_the_client_before_the_upstream_is_done(ollama_upstream: Upstream, path: str) -> None:
    ollama_upstream.fake.chunk_delay_secs = 0.05
    request = {"model": "qwen3.5:latest", "messages": [{"role": "user", "content": "a b c d e f g h i j"}]}
    async with (
        chatd_server(ollama_url=ollama_upstream.url) as url,
        httpx.AsyncClient(base_url=url) as client,
        client.stream("POST", path, json={**request, "stream": True}) as response,
    ):
        lines = response.aiter_lines()
        first = await anext(lines)
        # The upstream is still sending: what arrived was translated and passed on as it came.
        assert ollama_upstream.fake.streams_open == 1
        assert "echo:" in first
        rest = [line async for line in lines]
    assert any('"j"' in line or " j" in line for line in rest)


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions"])
async def test_upstream_failure_before_the_first_byte_is_a_json_error(ollama_upstream: Upstream, path: str) -> None:
    ollama_upstream.fake.script.append(JSONResponse({"error": "boom"}, status_code=500))
    async with chatd(ollama_url=ollama_upstream.url) as client:
        response = await client.post(path, json={"model": "qwen3.5:latest", "messages": HI, "stream": True})
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("upstream_error", "ollama: answered 500: boom")


async def test_failure_after_the_first_byte_is_one_error_event_and_no_done(ollama_upstream: Upstream) -> None:
    ollama_upstream.fake.fail_after_chunks = 2
    ollama_upstream.fake.chunk_delay_secs = 0.05  # so the first event is sent before the failure is known
    async with chatd(ollama_url=ollama_upstream.url) as client:
        openai = await client.post(
            "/v1/chat/completions", json={"model": "qwen3.5:latest", "messages": HI, "stream": True}
        )
        native = await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI, "stream": True})
    events = sse_events(openai.text)
    assert "[DONE]" not in events
    assert events[-1] == {
        "error": {
            "code": "upstream_error",
            "message": "ollama: failed mid-stream: the fake failed mid-stream (on purpose)",
            "type": "api_error",
            "param": None,
        }
    }
    assert [e["choices"][0]["delta"]["content"] for e in events[:-1]] == ["echo:", " hello"]
    lines = ndjson_lines(native.text)
    assert lines == [
        {"delta": "echo:"},
        {"delta": " hello"},
        {
            "error": {
                "code": "upstream_error",
                "message": "ollama: failed mid-stream: the fake failed mid-stream (on purpose)",
            }
        },
    ]


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions"])
async def test_client_disconnect_mid_stream_cancels_the_upstream(ollama_upstream: Upstream, path: str) -> None:
    fake = ollama_upstream.fake
    fake.chunk_delay_secs = 0.02
    fake.record = False
    aborted = 10
    async with chatd_server(ollama_url=ollama_upstream.url) as url:
        for _ in range(aborted):
            async with (
                httpx.AsyncClient(base_url=url) as client,
                client.stream("POST", path, json={"model": "qwen3.5:latest", "messages": LONG, "stream": True}) as r,
            ):
                await anext(r.aiter_lines())
        await eventually(lambda: fake.streams_aborted == aborted and fake.streams_open == 0)


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/chat/completions"])
async def test_client_disconnect_cancels_a_whole_answer_call(ollama_upstream: Upstream, path: str) -> None:
    ollama_upstream.fake.delay_secs = 60  # a hung provider: chatd would wait timeout_secs (180 s) for it
    async with chatd_server(ollama_url=ollama_upstream.url) as url, httpx.AsyncClient(base_url=url) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(path, json={"model": "qwen3.5:latest", "messages": HI}, timeout=0.3)
        await eventually(lambda: ollama_upstream.fake.disconnected == 1)


async def test_stream_goes_quiet_then_the_idle_timeout_is_a_mid_stream_error(ollama_upstream: Upstream) -> None:
    ollama_upstream.fake.chunk_delay_secs = 1.5
    async with chatd(ollama_url=ollama_upstream.url, timeout_secs=1) as client:
        response = await client.post("/v1/chat", json={"model": "qwen3.5:latest", "messages": HI, "stream": True})
    lines = ndjson_lines(response.text)
    assert lines[0] == {"delta": "echo:"}
    assert lines[-1]["error"]["code"] == "upstream_timeout"


async def test_openai_stream_passes_thinking_as_reasoning_content(ollama_upstream: Upstream) -> None:
    request = {"model": "qwen3.5:latest", "messages": HI, "stream": True, "think": True}
    async with chatd(ollama_url=ollama_upstream.url) as client:
        chunks = sse_events((await client.post("/v1/chat/completions", json=request)).text)[:-1]
    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "the user wants an echo",
    }
    async with chatd(ollama_url=ollama_upstream.url) as client:
        whole = (await client.post("/v1/chat/completions", json={**request, "stream": False})).json()
    assert whole["choices"][0]["message"]["reasoning_content"] == "the user wants an echo"
