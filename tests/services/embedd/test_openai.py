"""POST /v1/embeddings with the real openai SDK, against embedd on a real loopback port."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import cast

import httpx
import numpy as np
import openai
import pytest

from gateway.app import create_app as create_gateway
from services.embedd.app import create_app
from shared.config import load_config
from tests.support.fakes.ollama import fake_embedding
from tests.support.fixtures import Upstream
from tests.support.servers import run_server

BUILTIN = "builtin/all-minilm-l6-v2"


@pytest.fixture
async def embedd_url(ollama_upstream: Upstream) -> AsyncIterator[str]:
    config = load_config(embedd={"provider_url": ollama_upstream.url})
    async with run_server(create_app(config)) as url:
        yield url


@pytest.fixture
async def client(embedd_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=embedd_url + "/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


async def native(embedd_url: str, texts: list[str], model: str) -> list[list[float]]:
    async with httpx.AsyncClient() as http:
        response = await http.post(embedd_url + "/v1/embed", json={"texts": texts, "model": model})
    embeddings: list[list[float]] = response.json()["embeddings"]
    return embeddings


@pytest.mark.parametrize("encoding_format", ["float", "base64"])
async def test_sdk_embeds_with_the_builtin_model(
    client: openai.AsyncOpenAI, embedd_url: str, encoding_format: str
) -> None:
    texts = ["The quick brown fox", "jumps over the lazy dog"]
    result = await client.embeddings.create(
        model=BUILTIN,
        input=texts,
        encoding_format="float" if encoding_format == "float" else "base64",
        dimensions=384,
    )
    assert result.object == "list"
    assert result.model == BUILTIN
    assert [d.index for d in result.data] == [0, 1]
    expected = await native(embedd_url, texts, BUILTIN)
    if encoding_format == "float":
        vectors = [d.embedding for d in result.data]
    else:
        # Asked for explicitly, the SDK hands base64 back undecoded.
        vectors = [np.frombuffer(base64.b64decode(cast(str, d.embedding)), dtype="<f4").tolist() for d in result.data]
    assert np.allclose(vectors, expected, atol=1e-7)
    # [CLS] the quick brown fox [SEP] + [CLS] jumps over the lazy dog [SEP]
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (13, 13)


async def test_sdk_default_encoding_decodes_base64(client: openai.AsyncOpenAI, embedd_url: str) -> None:
    # Without encoding_format the SDK asks for base64 and decodes it itself.
    result = await client.embeddings.create(model=BUILTIN, input="hello world")
    assert np.allclose(result.data[0].embedding, (await native(embedd_url, ["hello world"], BUILTIN))[0], atol=1e-7)


async def test_sdk_reaches_ollama_models(client: openai.AsyncOpenAI, ollama_upstream: Upstream) -> None:
    result = await client.embeddings.create(model="nomic-embed-text", input=["alpha beta", "gamma"])
    assert np.allclose([d.embedding for d in result.data], [fake_embedding("alpha beta"), fake_embedding("gamma")])
    assert result.usage.prompt_tokens == 3  # the fake counts words


async def test_sdk_wrong_dimensions_is_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.embeddings.create(model=BUILTIN, input="hi", dimensions=128)
    assert caught.value.status_code == 400
    assert "dimensions 128 is not supported" in str(caught.value)


async def test_sdk_unknown_builtin_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="built-in models: builtin/all-minilm-l6-v2"):
        await client.embeddings.create(model="builtin/nope", input="hi")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"model": BUILTIN, "input": []}, "input is empty"),
        ({"model": BUILTIN, "input": [""]}, "input[0] is an empty string"),
        ({"model": BUILTIN, "input": [[101, 102]]}, "token arrays are not supported"),
        ({"model": BUILTIN, "input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a"}, "model"),
    ],
)
async def test_bad_openai_input_is_400(embedd_url: str, body: dict[str, object], expected: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(embedd_url + "/v1/embeddings", json=body)
    assert response.status_code == 400
    assert expected in response.json()["error"]["message"]


async def test_sdk_through_the_gateway(embedd_url: str) -> None:
    # The gateway forwards the exact path /v1/embeddings to embedd, so its /v1 is a base URL for the SDK.
    gateway = create_gateway(load_config(gateway={"embedd_url": embedd_url, "workers": 1}))
    async with (
        run_server(gateway) as gateway_url,
        openai.AsyncOpenAI(base_url=gateway_url + "/v1", api_key="unused", max_retries=0) as sdk,
    ):
        result = await sdk.embeddings.create(model=BUILTIN, input=["through the gateway"])
        with pytest.raises(openai.BadRequestError, match="dimensions 2 is not supported"):
            await sdk.embeddings.create(model=BUILTIN, input="x", dimensions=2)
    expected = await native(embedd_url, ["through the gateway"], BUILTIN)
    assert np.allclose(result.data[0].embedding, expected[0], atol=1e-7)
