"""embedd over HTTP: routing, the cache, the Ollama backend against the fake, and every bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.responses import JSONResponse

from services.embedd.app import create_app
from shared.config import load_config
from tests.support.fakes.ollama import EMBED_DIMENSIONS, fake_embedding
from tests.support.fixtures import Upstream
from tests.support.servers import app_client, free_port

BUILTIN = "builtin/all-minilm-l6-v2"


@asynccontextmanager
async def embedd(**embedd_config: Any) -> AsyncIterator[httpx.AsyncClient]:
    config = load_config(embedd={"provider_url": "", **embedd_config})
    async with app_client(create_app(config)) as client:
        yield client


def embed_calls(upstream: Upstream) -> list[list[str]]:
    return [r.body["input"] for r in upstream.fake.received if r.path == "/api/embed"]


async def test_builtin_model_embeds_in_order() -> None:
    texts = ["the cat sat", "a dog barked loudly at the mailman", "x"]
    async with embedd() as client:
        response = await client.post("/v1/embed", json={"texts": texts, "model": BUILTIN})
        singles = [(await client.post("/v1/embed", json={"text": t, "model": BUILTIN})).json() for t in texts]
    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["dimensions"], body["cached"]) == (BUILTIN, 384, 0)
    assert len(body["embeddings"]) == 3
    for row, single in zip(body["embeddings"], singles, strict=True):
        assert single["cached"] == 1
        assert np.allclose(row, single["embeddings"][0], atol=1e-6)


async def test_concurrent_requests_share_runs_and_each_gets_its_own_rows() -> None:
    # Requests that wait while a run is going are embedded together in the next one: each must still get exactly
    # the rows of its own texts, whatever it was batched with (one text, three, none cached).
    requests = [[f"text {i} about the lakehouse" + " and more" * (i % 5)] for i in range(14)]
    requests += [["three texts", "in one request", "of the batch"], ["the last one, alone"]]
    async with embedd() as together, embedd() as alone:
        answers = await asyncio.gather(
            *(together.post("/v1/embed", json={"texts": texts, "model": BUILTIN}) for texts in requests)
        )
        for texts, answer in zip(requests, answers, strict=True):
            assert answer.status_code == 200
            expected = (await alone.post("/v1/embed", json={"texts": texts, "model": BUILTIN})).json()
            assert len(answer.json()["embeddings"]) == len(texts)
            assert np.allclose(answer.json()["embeddings"], expected["embeddings"], atol=1e-5)


async def test_default_model_goes_to_ollama_in_one_batch(ollama_upstream: Upstream) -> None:
    async with embedd(provider_url=ollama_upstream.url) as client:
        body = (await client.post("/v1/embed", json={"texts": ["one two", "three"]})).json()
    assert body["model"] == "nomic-embed-text"
    assert body["dimensions"] == EMBED_DIMENSIONS
    assert np.allclose(body["embeddings"], [fake_embedding("one two"), fake_embedding("three")], atol=1e-6)
    (sent,) = ollama_upstream.fake.received
    assert (sent.path, sent.body) == ("/api/embed", {"model": "nomic-embed-text", "input": ["one two", "three"]})


async def test_ollama_prefix_is_stripped_and_shares_the_cache(ollama_upstream: Upstream) -> None:
    async with embedd(provider_url=ollama_upstream.url) as client:
        first = (await client.post("/v1/embed", json={"text": "hi", "model": "ollama/nomic-embed-text"})).json()
        second = (await client.post("/v1/embed", json={"text": "hi", "model": "nomic-embed-text"})).json()
    assert (first["cached"], second["cached"]) == (0, 1)
    assert [r.body["model"] for r in ollama_upstream.fake.received] == ["nomic-embed-text"]


async def test_only_misses_are_sent(ollama_upstream: Upstream) -> None:
    async with embedd(provider_url=ollama_upstream.url) as client:
        await client.post("/v1/embed", json={"texts": ["a", "b"]})
        body = (await client.post("/v1/embed", json={"texts": ["b", "c", "a", "c"]})).json()
    assert body["cached"] == 3  # b and a from the cache, the second c from the first
    assert embed_calls(ollama_upstream) == [["a", "b"], ["c"]]
    expected = [fake_embedding(t) for t in ["b", "c", "a", "c"]]
    assert np.allclose(body["embeddings"], expected, atol=1e-6)


async def test_least_recently_used_is_evicted(ollama_upstream: Upstream) -> None:
    async with embedd(provider_url=ollama_upstream.url, cache_size=2) as client:
        for texts in (["a"], ["b"], ["a"], ["c"], ["a"], ["b"]):
            await client.post("/v1/embed", json={"texts": texts})
    # a was used again before c arrived, so c pushed out b; b had to be computed again.
    assert embed_calls(ollama_upstream) == [["a"], ["b"], ["c"], ["b"]]


async def test_cache_size_zero_disables_the_cache(ollama_upstream: Upstream) -> None:
    async with embedd(provider_url=ollama_upstream.url, cache_size=0) as client:
        bodies = [(await client.post("/v1/embed", json={"text": "a"})).json() for _ in range(2)]
    assert [b["cached"] for b in bodies] == [0, 0]
    assert embed_calls(ollama_upstream) == [["a"], ["a"]]


async def test_concurrent_requests_for_a_text_compute_it_once(ollama_upstream: Upstream) -> None:
    ollama_upstream.fake.delay_secs = 0.3
    async with embedd(provider_url=ollama_upstream.url) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/embed", json={"texts": ["same", f"own {i}"]}) for i in range(8))
        )
    assert all(r.status_code == 200 for r in responses)
    sent = [text for call in embed_calls(ollama_upstream) for text in call]
    assert sent.count("same") == 1
    assert sorted(t for t in sent if t != "same") == sorted(f"own {i}" for i in range(8))


async def test_concurrent_waiters_share_a_failure(ollama_upstream: Upstream) -> None:
    ollama_upstream.fake.delay_secs = 0.3
    ollama_upstream.fake.models.discard("nomic-embed-text")
    async with embedd(provider_url=ollama_upstream.url) as client:
        responses = await asyncio.gather(*(client.post("/v1/embed", json={"text": "same"}) for _ in range(4)))
        assert [r.status_code for r in responses] == [404] * 4
        ollama_upstream.fake.models.add("nomic-embed-text")
        retry = await client.post("/v1/embed", json={"text": "same"})
    assert retry.status_code == 200  # a failure is not cached
    assert len(embed_calls(ollama_upstream)) == 2


async def error_of(client: httpx.AsyncClient, body: Any, status: int) -> str:
    response = await client.post("/v1/embed", json=body)
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    return error["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"texts": []}, "texts is empty"),
        ({"texts": ["ok", ""]}, "texts[1] is an empty string"),
        ({"text": ""}, "text is an empty string"),
        ({"texts": ["x"] * 513}, "513 texts; at most 512"),
        ({}, 'either "texts"'),
        ({"texts": ["a"], "text": "b"}, 'either "texts"'),
        ({"texts": "not a list"}, "texts"),
        ({"texts": [1, 2]}, "texts.0"),
        ({"text": "a", "model": ""}, "model"),
        ({"text": "a", "temperature": 1}, "temperature: unknown field"),
        ({"text": "a", "model": "builtin/"}, "names no model"),
    ],
)
async def test_bad_input_is_400(body: Any, expected: str) -> None:
    async with embedd() as client:
        assert expected in await error_of(client, body, 400)


async def test_512_texts_are_fine() -> None:
    async with embedd() as client:
        body = (await client.post("/v1/embed", json={"texts": ["x"] * 512, "model": BUILTIN})).json()
    assert (len(body["embeddings"]), body["cached"]) == (512, 511)


async def test_oversized_body_is_413() -> None:
    async with embedd() as client:
        response = await client.post("/v1/embed", json={"texts": ["y" * 1000] * 5000, "model": BUILTIN})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_non_json_is_415() -> None:
    async with embedd() as client:
        response = await client.post("/v1/embed", content=b"text=hi", headers={"content-type": "text/plain"})
    assert response.status_code == 415


async def test_unknown_builtin_is_404_listing_the_builtins() -> None:
    async with embedd() as client:
        message = await error_of(client, {"text": "a", "model": "builtin/bert-huge"}, 404)
    assert message == 'no built-in model "builtin/bert-huge"; built-in models: builtin/all-minilm-l6-v2'


async def test_model_ollama_lacks_is_404_with_its_message(ollama_upstream: Upstream) -> None:
    async with embedd(provider_url=ollama_upstream.url) as client:
        message = await error_of(client, {"text": "a", "model": "mxbai-embed-large"}, 404)
    assert 'model "mxbai-embed-large" not found, try pulling it first' in message


async def test_ollama_down_is_502() -> None:
    async with embedd(provider_url=f"http://127.0.0.1:{free_port()}") as client:
        response = await client.post("/v1/embed", json={"text": "a"})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unavailable"


async def test_slow_ollama_is_504(ollama_upstream: Upstream) -> None:
    ollama_upstream.fake.delay_secs = 2.0
    async with embedd(provider_url=ollama_upstream.url, timeout_secs=0.2) as client:
        response = await client.post("/v1/embed", json={"text": "a"})
    assert response.status_code == 504
    assert response.json()["error"] == {
        "code": "upstream_timeout",
        "message": f"Ollama at {ollama_upstream.url} did not answer within 0.2 s",
    }


async def test_unusable_ollama_answer_is_502(ollama_upstream: Upstream) -> None:
    ollama_upstream.fake.script.append(JSONResponse({"embeddings": [[1.0, 2.0]]}))
    async with embedd(provider_url=ollama_upstream.url) as client:
        message = await error_of(client, {"texts": ["a", "b"]}, 502)
    assert message == "Ollama's /api/embed answer is unusable: 1 embeddings for 2 texts"


async def test_no_provider_url_means_only_builtin_models() -> None:
    async with embedd(provider_url="") as client:
        response = await client.post("/v1/embed", json={"text": "a"})
        listing = (await client.get("/v1/embed/models")).json()
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "provider_not_registered"
    assert "embedd.provider_url" in response.json()["error"]["message"]
    assert listing == {
        "default_model": "nomic-embed-text",
        "builtin": [{"name": BUILTIN, "dimensions": 384}],
        "ollama_url": None,
    }
