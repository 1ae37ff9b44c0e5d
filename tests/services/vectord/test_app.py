"""vectord over HTTP, in memory: index CRUD, upsert/delete/query for every metric, filters, every bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import numpy as np
import pytest

from services.vectord.app import create_app
from shared.config import load_config
from tests.support.servers import app_client


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(load_config(vectord={"storaged_url": ""}))) as http:
        yield http


async def make(client: httpx.AsyncClient, name: str, dimensions: int, metric: str = "cosine") -> None:
    response = await client.put(f"/v1/vectors/{name}", json={"dimensions": dimensions, "metric": metric})
    assert response.status_code == 201, response.text


async def upsert(client: httpx.AsyncClient, name: str, items: list[dict[str, Any]]) -> httpx.Response:
    return await client.post(f"/v1/vectors/{name}/upsert", json={"items": items})


async def query(client: httpx.AsyncClient, name: str, **body: Any) -> list[dict[str, Any]]:
    response = await client.post(f"/v1/vectors/{name}/query", json=body)
    assert response.status_code == 200, response.text
    matches: list[dict[str, Any]] = response.json()["matches"]
    return matches


async def test_index_lifecycle(client: httpx.AsyncClient) -> None:
    created = await client.put("/v1/vectors/docs", json={"dimensions": 3, "metric": "l2"})
    assert (created.status_code, created.json()) == (201, {"name": "docs", "dimensions": 3, "metric": "l2", "count": 0})
    again = await client.put("/v1/vectors/docs", json={"dimensions": 3, "metric": "l2"})
    assert again.status_code == 200
    other = await client.put("/v1/vectors/docs", json={"dimensions": 4, "metric": "l2"})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "already_exists"
    assert "dimensions 3" in other.json()["error"]["message"]
    await make(client, "a-first", 2)
    await upsert(client, "docs", [{"id": "x", "vector": [1, 2, 3]}])
    listing = (await client.get("/v1/vectors")).json()
    assert listing == {
        "indexes": [
            {"name": "a-first", "dimensions": 2, "metric": "cosine", "count": 0},
            {"name": "docs", "dimensions": 3, "metric": "l2", "count": 1},
        ]
    }
    assert (await client.get("/v1/vectors/docs")).json()["count"] == 1
    dropped = await client.delete("/v1/vectors/docs")
    assert dropped.json() == {"name": "docs", "deleted": True, "count": 1}
    assert (await client.get("/v1/vectors/docs")).status_code == 404
    assert (await client.delete("/v1/vectors/docs")).status_code == 404
    recreated = await client.put("/v1/vectors/docs", json={"dimensions": 4})
    assert recreated.json() == {"name": "docs", "dimensions": 4, "metric": "cosine", "count": 0}


async def test_upsert_replaces_and_delete_removes(client: httpx.AsyncClient) -> None:
    await make(client, "v", 2)
    response = await upsert(
        client,
        "v",
        [
            {"id": "a", "vector": [1, 0], "metadata": {"tag": "old"}},
            {"id": "b", "vector": [0, 1]},
        ],
    )
    assert response.json() == {"upserted": 2}
    await upsert(client, "v", [{"id": "a", "vector": [0, 1], "metadata": {"tag": "new"}}])
    matches = await query(client, "v", vector=[0, 1], k=5)
    assert [(m["id"], round(m["score"], 6), m["metadata"]) for m in matches] == [
        ("a", 1.0, {"tag": "new"}),
        ("b", 1.0, {}),
    ] or [m["id"] for m in matches] == ["b", "a"]
    assert (await client.get("/v1/vectors/v")).json()["count"] == 2
    deleted = await client.post("/v1/vectors/v/delete", json={"ids": ["a", "zzz"]})
    assert deleted.json() == {"deleted": 1}
    assert [m["id"] for m in await query(client, "v", vector=[1, 0], k=5)] == ["b"]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        # query [1, 0]: cosine similarity, inner product, minus the L2 distance — higher is better for all
        ("cosine", [("east", 1.0), ("far-east", 1.0), ("north-east", 0.707107), ("north", 0.0)]),
        ("ip", [("far-east", 3.0), ("east", 1.0), ("north-east", 0.707107), ("north", 0.0)]),
        ("l2", [("east", 0.0), ("north-east", -0.765367), ("north", -1.414214), ("far-east", -2.0)]),
    ],
)
async def test_scores_are_higher_is_better(
    client: httpx.AsyncClient, metric: str, expected: list[tuple[str, float]]
) -> None:
    await make(client, "m", 2, metric)
    s = float(np.sqrt(0.5))
    items = [
        {"id": "east", "vector": [1, 0]},
        {"id": "north", "vector": [0, 1]},
        {"id": "north-east", "vector": [s, s]},
        {"id": "far-east", "vector": [3, 0]},
    ]
    await upsert(client, "m", items)
    matches = await query(client, "m", vector=[1, 0], k=4)
    got = [(m["id"], round(m["score"], 5)) for m in matches]
    want = [(i, round(score, 5)) for i, score in expected]
    if metric == "cosine":  # east and far-east tie
        assert sorted(got[:2]) == sorted(want[:2])
        assert got[2:] == want[2:]
    else:
        assert got == want


async def test_k_larger_than_the_index_returns_everything(client: httpx.AsyncClient) -> None:
    await make(client, "small", 2)
    await upsert(client, "small", [{"id": "a", "vector": [1, 0]}])
    assert [m["id"] for m in await query(client, "small", vector=[1, 1], k=1000)] == ["a"]
    await make(client, "empty", 2)
    assert await query(client, "empty", vector=[1, 1]) == []


async def test_include_vectors(client: httpx.AsyncClient) -> None:
    await make(client, "iv", 3, "l2")
    await upsert(client, "iv", [{"id": "a", "vector": [0.5, -1.25, 2]}])
    (match,) = await query(client, "iv", vector=[0, 0, 0], include_vectors=True)
    assert match["vector"] == [0.5, -1.25, 2]
    (plain,) = await query(client, "iv", vector=[0, 0, 0])
    assert "vector" not in plain


def clustered(n: int, dims: int, seed: int = 1) -> tuple[np.ndarray[Any, np.dtype[np.float32]], list[int]]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((8, dims)) * 3
    labels = rng.integers(0, 8, n)
    return (centers[labels] + 0.3 * rng.standard_normal((n, dims))).astype(np.float32), labels.tolist()


@pytest.mark.parametrize("who", ["one in 997", "one in 3", "other clusters"])
async def test_filter_still_returns_k_matches(client: httpx.AsyncClient, who: str) -> None:
    # Few matches (an exact scan), many (over-fetch from HNSW), and many but none near the query (over-fetch
    # comes back short, so the exact fallback must run): k results whenever k exist.
    n, dims = 6000, 16
    vectors, labels = clustered(n, dims)
    target_label = labels[1]
    red_rules: dict[str, Callable[[int], bool]] = {
        "one in 997": lambda i: i % 997 == 0,
        "one in 3": lambda i: i % 3 == 0,
        "other clusters": lambda i: labels[i] != target_label,
    }
    is_red = red_rules[who]
    await make(client, "f", dims)
    items = [
        {"id": f"i{i}", "vector": v.tolist(), "metadata": {"team": "red" if is_red(i) else "blue", "n": i}}
        for i, v in enumerate(vectors)
    ]
    for start in range(0, n, 2000):
        assert (await upsert(client, "f", items[start : start + 2000])).status_code == 200
    target = vectors[1]
    matches = await query(client, "f", vector=target.tolist(), k=10, filter={"team": "red"})
    red = np.array([i for i in range(n) if is_red(i)])
    assert len(matches) == min(10, len(red))
    assert all(m["metadata"]["team"] == "red" for m in matches)
    scores = vectors[red] @ target / (np.linalg.norm(vectors[red], axis=1) * np.linalg.norm(target))
    best = {f"i{red[j]}" for j in np.argsort(-scores)[:10]}
    assert len(best & {m["id"] for m in matches}) >= len(matches) - 1


async def test_filter_needs_every_key_to_match(client: httpx.AsyncClient) -> None:
    await make(client, "f2", 2)
    await upsert(
        client,
        "f2",
        [
            {"id": "a", "vector": [1, 0], "metadata": {"lang": "en", "year": 2024}},
            {"id": "b", "vector": [1, 0.1], "metadata": {"lang": "en", "year": 2025}},
            {"id": "c", "vector": [1, 0.2], "metadata": {"lang": "de", "year": 2024.0, "tags": {"x": 1}}},
        ],
    )
    ids = [m["id"] for m in await query(client, "f2", vector=[1, 0], filter={"lang": "en", "year": 2024})]
    assert ids == ["a"]
    assert [m["id"] for m in await query(client, "f2", vector=[1, 0], filter={"year": 2024})] == ["a", "c"]
    assert [m["id"] for m in await query(client, "f2", vector=[1, 0], filter={"tags": {"x": 1}})] == ["c"]
    assert await query(client, "f2", vector=[1, 0], filter={"lang": "fr"}) == []


async def bad(client: httpx.AsyncClient, method: str, path: str, body: Any, status: int = 400) -> str:
    response = await client.request(method, path, json=body)
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    return message


async def test_bad_inputs(client: httpx.AsyncClient) -> None:
    await make(client, "b", 3)
    await make(client, "bl2", 3, "l2")
    cases: list[tuple[str, str, Any, int, str]] = [
        ("PUT", "/v1/vectors/b", {"dimensions": 0}, 400, "dimensions"),
        ("PUT", "/v1/vectors/b", {"dimensions": 3, "metric": "dot"}, 400, "metric"),
        ("PUT", "/v1/vectors/b", {"dimensions": "3"}, 400, "dimensions"),
        ("PUT", "/v1/vectors/.hidden", {"dimensions": 3}, 400, "index name '.hidden' is not valid"),
        ("PUT", "/v1/vectors/" + "x" * 129, {"dimensions": 3}, 400, "is not valid"),
        ("POST", "/v1/vectors/nope/upsert", {"items": [{"id": "a", "vector": [1, 2, 3]}]}, 404, 'no index "nope"'),
        ("POST", "/v1/vectors/nope/query", {"vector": [1, 2, 3]}, 404, 'no index "nope"'),
        ("POST", "/v1/vectors/nope/delete", {"ids": ["a"]}, 404, 'no index "nope"'),
        ("GET", "/v1/vectors/nope", None, 404, 'no index "nope"'),
        ("POST", "/v1/vectors/b/upsert", {"items": []}, 400, "items"),
        (
            "POST",
            "/v1/vectors/b/upsert",
            {"items": [{"id": "a", "vector": [1, 2, 3]}, {"id": "b", "vector": [1, 2]}]},
            400,
            'items[1].vector has 2 dimensions; index "b" has 3',
        ),
        ("POST", "/v1/vectors/b/upsert", {"items": [{"id": "", "vector": [1, 2, 3]}]}, 400, "items.0.id"),
        ("POST", "/v1/vectors/b/upsert", {"items": [{"id": "a", "vector": [1, "2", 3]}]}, 400, "items.0.vector.1"),
        ("POST", "/v1/vectors/b/upsert", {"items": [{"id": "a", "vector": [1, 2, 3], "x": 1}]}, 400, "unknown"),
        ("POST", "/v1/vectors/b/upsert", {"items": [{"id": "a", "vector": [1, 2, 1e39]}]}, 400, "too large"),
        ("POST", "/v1/vectors/b/upsert", {"items": [{"id": "a", "vector": [0, 0, 0]}]}, 400, "all zeros"),
        ("POST", "/v1/vectors/b/query", {"vector": [1, 2]}, 400, 'vector has 2 dimensions; index "b" has 3'),
        ("POST", "/v1/vectors/b/query", {"vector": [1, 2, 3], "k": 0}, 400, "k"),
        ("POST", "/v1/vectors/b/query", {"vector": [1, 2, 3], "k": 1001}, 400, "k"),
        ("POST", "/v1/vectors/b/query", {"vector": [1, 2, 3], "k": 2.5}, 400, "k"),
        ("POST", "/v1/vectors/b/query", {"vector": [1, 2, 3], "filter": ["a"]}, 400, "filter"),
        ("POST", "/v1/vectors/b/query", {"vector": []}, 400, "vector"),
        ("POST", "/v1/vectors/b/delete", {"ids": []}, 400, "ids"),
    ]
    for method, path, body, status, expected in cases:
        assert expected in await bad(client, method, path, body, status), (method, path, body)
    # l2 has no use for a direction: the zero vector is a fine point
    assert (await upsert(client, "bl2", [{"id": "origin", "vector": [0, 0, 0]}])).status_code == 200


async def test_nan_and_infinity_are_400(client: httpx.AsyncClient) -> None:
    await make(client, "n", 2)
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"items": [{"id": "a", "vector": [1, ' + literal + b"]}]}"
        response = await client.post("/v1/vectors/n/upsert", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert "items.0.vector.1" in response.json()["error"]["message"]
    query_body = b'{"vector": [NaN, 1]}'
    response = await client.post(
        "/v1/vectors/n/query", content=query_body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_not_json_is_415(client: httpx.AsyncClient) -> None:
    await make(client, "j", 2)
    response = await client.post("/v1/vectors/j/query", content=b"vector=1,2")
    assert response.status_code == 415
