"""The real `openai` SDK against the stack's gateway on loopback (gateway → chatd → provider fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from starlette.responses import JSONResponse

from gateway.app import create_app as create_gateway
from services.chatd.app import create_app as create_chatd
from shared.config import load_config
from tests.services.chatd.harness import KEY_VARS, NO_KEY_FILES
from tests.support.fakes import ollama
from tests.support.fakes import openai as openai_fake
from tests.support.fakes.recorder import FakeUpstream
from tests.support.servers import run_server, run_servers

TOKEN = "stack-token-abc"
PROVIDER_KEY = "or-key-123"  # what the OpenAI-protocol fake accepts
HI: Any = [{"role": "user", "content": "hello there"}]


@dataclass
class SdkStack:
    client: AsyncOpenAI
    gateway: str
    ollama: FakeUpstream
    openai: FakeUpstream


@pytest.fixture
async def sdk(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SdkStack]:
    for name in KEY_VARS:
        monkeypatch.setenv(name, PROVIDER_KEY)
    ollama_fake, openai_fake_state = FakeUpstream(), FakeUpstream()
    async with run_servers(
        [ollama.create_app(ollama_fake), openai_fake.create_app(openai_fake_state, key=PROVIDER_KEY)]
    ) as (ollama_url, openai_url):
        chatd_section = {
            **NO_KEY_FILES,
            "ollama_url": ollama_url,
            "ollama_cloud_url": ollama_url,
            "openrouter_url": openai_url,
            "opencode_url": openai_url,
            "kimi_url": openai_url,
        }
        models = {"local_fast": "ollama/qwen3:latest", "cloud_strong": ""}
        chatd_config = load_config(chatd=chatd_section, auth={"token": TOKEN}, models=models)
        async with run_server(create_chatd(chatd_config)) as chatd_url:
            gateway_config = load_config(gateway={"chatd_url": chatd_url}, auth={"token": TOKEN})
            async with run_server(create_gateway(gateway_config)) as gateway_url:
                client = AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=TOKEN, max_retries=0)
                async with client:
                    yield SdkStack(client, gateway_url, ollama_fake, openai_fake_state)


PROVIDERS = [
    ("qwen3.5:latest", "ollama/qwen3.5:latest", "ollama"),
    ("kimi-k2.6:cloud", "ollama_cloud/kimi-k2.6", "ollama"),
    ("openrouter/anthropic/claude-opus-4-7", "openrouter/anthropic/claude-opus-4-7", "openai"),
    ("opencode/kimi-k2.6", "opencode/kimi-k2.6", "openai"),
    ("kimi/kimi-k2.6", "kimi/kimi-k2.6", "openai"),
]


@pytest.mark.parametrize(("model", "routed", "fake"), PROVIDERS)
async def test_plain_completion_from_every_provider(sdk: SdkStack, model: str, routed: str, fake: str) -> None:
    raw = await sdk.client.chat.completions.with_raw_response.create(model=model, messages=HI)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == routed
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        2,
        3,
        5,
    )
    assert raw.headers["x-lakehouse-model"] == routed
    assert raw.headers["x-lakehouse-provider"] == routed.split("/")[0]
    received = getattr(sdk, fake).received
    # The stack's token never reaches a provider: each gets only its own key (or none).
    assert all(TOKEN not in str(r.headers) for r in received)
    if fake == "openai":
        assert received[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"


@pytest.mark.parametrize(("model", "routed", "fake"), PROVIDERS)
async def test_stream_from_every_provider(sdk: SdkStack, model: str, routed: str, fake: str) -> None:
    stream = await sdk.client.chat.completions.create(model=model, messages=HI, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hello there"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.model for c in chunks} == {routed}


async def test_stream_include_usage_ends_with_the_real_counts(sdk: SdkStack) -> None:
    stream = await sdk.client.chat.completions.create(
        model="openrouter/anthropic/claude-opus-4-7",
        messages=HI,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, 3)


async def test_models_list_has_tiers_and_local_ollama_models(sdk: SdkStack) -> None:
    ids = [model.id async for model in sdk.client.models.list()]
    assert "local_fast" in ids
    assert "frontier_free" in ids
    assert "cloud_strong" not in ids  # an empty tier is not offered
    assert "ollama/qwen3.5:latest" in ids


async def test_models_list_answers_without_ollama(monkeypatch: pytest.MonkeyPatch) -> None:
    from scripts.net import free_port

    config = load_config(chatd={**NO_KEY_FILES, "ollama_url": f"http://127.0.0.1:{free_port()}"})
    async with run_server(create_chatd(config)) as url, AsyncOpenAI(base_url=f"{url}/v1", api_key="x") as client:
        ids = [model.id async for model in client.models.list()]
    assert "local_fast" in ids
    assert not any(i.startswith("ollama/") for i in ids)


async def test_json_mode_and_json_schema(sdk: SdkStack) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await sdk.client.chat.completions.create(
        model="qwen3.5:latest", messages=HI, response_format={"type": "json_object"}
    )
    await sdk.client.chat.completions.create(
        model="qwen3.5:latest",
        messages=HI,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    )
    await sdk.client.chat.completions.create(
        model="openrouter/anthropic/claude-opus-4-7", messages=HI, response_format={"type": "json_object"}
    )
    await sdk.client.chat.completions.create(
        model="kimi/kimi-k2.6",
        messages=HI,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}},
    )
    assert [r.body["format"] for r in sdk.ollama.received] == ["json", schema]
    assert [r.body["response_format"] for r in sdk.openai.received] == [
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}},
    ]


async def test_options_reach_the_provider(sdk: SdkStack) -> None:
    await sdk.client.chat.completions.create(
        model="qwen3.5:latest",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        max_completion_tokens=9,
        temperature=0.3,
        top_p=0.9,
        stop=["\n\n"],
        seed=7,
        n=1,
    )
    body = sdk.ollama.received[0].body
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert body["options"] == {"num_predict": 9, "temperature": 0.3, "top_p": 0.9, "seed": 7, "stop": ["\n\n"]}


async def test_tier_names_work_through_the_sdk(sdk: SdkStack) -> None:
    completion = await sdk.client.chat.completions.create(model="local_fast", messages=HI)
    assert completion.model == "ollama/qwen3:latest"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"temperature": 9}, "temperature"),
        ({"extra_body": {"surprise": 1}}, "surprise"),
    ],
)
async def test_unsupported_parameters_raise_bad_request(sdk: SdkStack, kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.client.chat.completions.create(model="qwen3.5:latest", messages=HI, **kwargs)
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"
    assert param in caught.value.message
    assert sdk.ollama.received == []


async def test_empty_tier_raises_bad_request(sdk: SdkStack) -> None:
    with pytest.raises(openai.BadRequestError, match=r"\[models\] cloud_strong"):
        await sdk.client.chat.completions.create(model="cloud_strong", messages=HI)


async def test_error_classes(sdk: SdkStack) -> None:
    sdk.ollama.script.append(JSONResponse({"error": "boom"}, status_code=500))
    with pytest.raises(openai.InternalServerError) as server:
        await sdk.client.chat.completions.create(model="qwen3:latest", messages=HI)
    sdk.ollama.script.append(JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "3"}))
    with pytest.raises(openai.RateLimitError) as limited:
        await sdk.client.chat.completions.create(model="qwen3.5:latest", messages=HI)
    async with AsyncOpenAI(base_url=f"{sdk.gateway}/v1", api_key="wrong", max_retries=0) as intruder:
        with pytest.raises(openai.AuthenticationError):
            await intruder.chat.completions.create(model="qwen3.5:latest", messages=HI)
    assert limited.value.type == "rate_limit_error"
    assert limited.value.response.headers["retry-after"] == "3"
    assert server.value.type == "api_error"


async def test_unregistered_provider_raises_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    config = load_config(chatd={**NO_KEY_FILES, "ollama_url": ""})
    async with run_server(create_chatd(config)) as url, AsyncOpenAI(base_url=f"{url}/v1", api_key="x") as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="kimi/kimi-k2.6", messages=HI)
    assert caught.value.type == "not_found_error"
    assert caught.value.code == "provider_not_registered"


async def test_stream_failure_after_the_first_byte_raises_in_the_sdk(sdk: SdkStack) -> None:
    sdk.ollama.fail_after_chunks = 1
    sdk.ollama.chunk_delay_secs = 0.05
    stream = await sdk.client.chat.completions.create(model="qwen3.5:latest", messages=HI, stream=True)
    seen: list[str | None] = []

    async def read_all() -> None:
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content)

    with pytest.raises(openai.APIError, match="failed mid-stream"):
        await read_all()
    assert seen == ["echo:"]
