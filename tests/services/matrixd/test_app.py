"""matrixd against real vectord and embedd servers: merge by score, partial failure, text queries, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.embedd.app import create_app as create_embedd
from services.matrixd.app import create_app as create_matrixd
from services.vectord.app import create_app as create_vectord
from shared.config import load_config
from tests.support.servers import app_client, free_port, run_servers

BUILTIN = "builtin/all-minilm-l6-v2"


@dataclass
class Plane:
    matrixd: httpx.AsyncClient
    vectord: httpx.AsyncClient
    embedd: httpx.AsyncClient


@pytest.fixture
async def plane() -> AsyncIterator[Plane]:
    config = load_config(vectord={"storaged_url": ""}, embedd={"provider_url": "", "default_model": BUILTIN})
    async with run_servers([create_vectord(config), create_embedd(config)]) as (vectord_url, embedd_url):
        matrixd_config = load_config(matrixd={"vectord_url": vectord_url, "embedd_url": embedd_url})
        async with (
            app_client(create_matrixd(matrixd_config)) as matrixd,
            httpx.AsyncClient(base_url=vectord_url) as vectord,
            httpx.AsyncClient(base_url=embedd_url) as embedd,
        ):
            yield Plane(matrixd, vectord, embedd)


async def corpus(plane: Plane, name: str, items: list[tuple[str, list[float]]], metric: str = "ip") -> None:
    dims = len(items[0][1])
    assert (await plane.vectord.put(f"/v1/vectors/{name}", json={"dimensions": dims, "metric": metric})).is_success
    body = {"items": [{"id": i, "vector": v, "metadata": {"from": name}} for i, v in items]}
    assert (await plane.vectord.post(f"/v1/vectors/{name}/upsert", json=body)).status_code == 200


async def search(plane: Plane, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await plane.matrixd.post("/v1/matrix/search", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_results_merge_by_score(plane: Plane) -> None:
    await corpus(plane, "a", [("a1", [0.9, 0]), ("a2", [0.5, 0]), ("a3", [0.1, 0])])
    await corpus(plane, "b", [("b1", [0.7, 0]), ("b2", [0.3, 0])])
    result = await search(plane, {"vector": [1, 0], "corpora": ["a", "b"], "k": 4})
    assert [(m["corpus"], m["id"], round(m["score"], 5)) for m in result["matches"]] == [
        ("a", "a1", 0.9),
        ("b", "b1", 0.7),
        ("a", "a2", 0.5),
        ("b", "b2", 0.3),
    ]
    assert result["matches"][0]["metadata"] == {"from": "a"}
    assert result["errors"] == {}


async def test_a_failing_corpus_is_reported_not_fatal(plane: Plane) -> None:
    await corpus(plane, "a", [("a1", [1, 0])])
    await corpus(plane, "wide", [("w1", [1, 0, 0])])
    result = await search(plane, {"vector": [1, 0], "corpora": ["a", "missing", "wide"]})
    assert [m["id"] for m in result["matches"]] == ["a1"]
    assert set(result["errors"]) == {"missing", "wide"}
    assert result["errors"]["missing"].startswith("404 not_found")
    assert "2 dimensions" in result["errors"]["wide"]


async def test_no_corpus_answering_is_502(plane: Plane) -> None:
    response = await plane.matrixd.post("/v1/matrix/search", json={"vector": [1, 0], "corpora": ["x", "y"]})
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert message.startswith("no corpus answered: x: 404 not_found")
    assert "y: 404" in message


async def test_corpora_must_share_a_metric(plane: Plane) -> None:
    await corpus(plane, "a", [("a1", [1, 0])], metric="ip")
    await corpus(plane, "c", [("c1", [1, 0])], metric="cosine")
    response = await plane.matrixd.post("/v1/matrix/search", json={"vector": [1, 0], "corpora": ["a", "c"]})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        'corpora must share a metric for their scores to compare: a is "ip", c is "cosine"'
    )


async def test_text_query_is_embedded_through_embedd(plane: Plane) -> None:
    docs = {
        "pets": ["A kitten is napping on the couch.", "Dogs love to chase balls in the park."],
        "money": ["Shares dropped steeply in today's trading.", "The central bank raised interest rates."],
    }
    for name, texts in docs.items():
        vectors = (await plane.embedd.post("/v1/embed", json={"texts": texts})).json()["embeddings"]
        await corpus(plane, name, list(zip(texts, vectors, strict=True)), metric="cosine")
    result = await search(plane, {"query": "The stock market fell sharply today.", "corpora": ["pets", "money"]})
    assert [m["corpus"] for m in result["matches"][:2]] == ["money", "money"]
    assert result["matches"][0]["id"] == "Shares dropped steeply in today's trading."
    unknown = await plane.matrixd.post(
        "/v1/matrix/search", json={"query": "x", "corpora": ["pets"], "model": "builtin/nope"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"].startswith("embedd: no built-in model")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"corpora": ["a"]}, 'either "query"'),
        ({"query": "q", "vector": [1], "corpora": ["a"]}, 'either "query"'),
        ({"vector": [1], "corpora": []}, "corpora"),
        ({"vector": [1], "corpora": ["a", "a"]}, "more than once"),
        ({"vector": [1], "corpora": ["a"], "k": 0}, "k"),
        ({"vector": [1], "corpora": ["a"], "k": 1001}, "k"),
        ({"vector": [1], "corpora": ["a"], "model": BUILTIN}, '"model" embeds "query"'),
        ({"query": "", "corpora": ["a"]}, "query"),
    ],
)
async def test_bad_input_is_400(plane: Plane, body: dict[str, Any], expected: str) -> None:
    response = await plane.matrixd.post("/v1/matrix/search", json=body)
    assert response.status_code == 400
    assert expected in response.json()["error"]["message"]


async def test_unreachable_upstreams_are_502() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    async with app_client(create_matrixd(load_config(matrixd={"vectord_url": down, "embedd_url": down}))) as client:
        by_vector = await client.post("/v1/matrix/search", json={"vector": [1, 0], "corpora": ["a"]})
        by_text = await client.post("/v1/matrix/search", json={"query": "hi", "corpora": ["a"]})
    assert by_vector.status_code == 502
    assert "a: 502 upstream_unavailable" in by_vector.json()["error"]["message"]
    assert (by_text.status_code, by_text.json()["error"]["code"]) == (502, "upstream_unavailable")


@pytest.mark.parametrize("missing", ["embedd_url", "vectord_url"])
async def test_both_upstream_urls_are_required(missing: str) -> None:
    app = create_matrixd(load_config(matrixd={missing: ""}))
    with pytest.raises(Exception, match=f"matrixd.{missing} must be set"):
        async with app_client(app):
            pass


def test_serve_refuses_to_start_without_embedd() -> None:
    env = {**os.environ, "LH_MATRIXD__EMBEDD_URL": "", "LH_MATRIXD__BIND": f"127.0.0.1:{free_port()}"}
    done = subprocess.run(
        [sys.executable, "-m", "shared.stack.cli", "serve", "matrixd"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode != 0
    assert b"matrixd: matrixd.embedd_url must be set" in done.stdout + done.stderr
