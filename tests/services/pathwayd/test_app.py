from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.pathwayd.app import create_app
from tests.support.fixtures import ConfigFactory
from tests.support.servers import app_client

TRACE: dict[str, Any] = {
    "kind": "ingest",
    "steps": [{"name": "parse", "input": {"file": "a.csv"}, "output": 3, "status": "ok", "duration_ms": 1.5}],
    "metadata": {"user": "u1"},
}


async def test_traces_written_listed_fetched_and_counted(make_config: ConfigFactory, tmp_path: Path) -> None:
    config = make_config(pathwayd={"persist_path": str(tmp_path / "traces.jsonl")})
    async with app_client(create_app(config)) as client:
        first = await client.post("/v1/pathway/traces", json=TRACE)
        named = await client.post("/v1/pathway/traces", json={**TRACE, "kind": "query", "id": "run-7"})
        again = await client.post("/v1/pathway/traces", json={**TRACE, "id": "run-7"})
        listing = await client.get("/v1/pathway/traces", params={"kind": "query"})
        one = await client.get("/v1/pathway/traces/run-7")
        missing = await client.get("/v1/pathway/traces/nope")
        stats = await client.get("/v1/pathway/stats")
    assert first.status_code == 201
    assert set(first.json()) == {"id", "seq", "ts"}
    assert first.json()["seq"] == 1
    assert named.status_code == 201
    assert named.json()["id"] == "run-7"
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_exists"
    assert listing.json() == {"items": [one.json()], "next": None}
    assert one.json() == {"seq": 2, "ts": named.json()["ts"], "id": "run-7", **TRACE, "kind": "query"}
    assert missing.status_code == 404
    body = stats.json()
    assert body["count"] == 2
    assert body["first_ts"] == first.json()["ts"]
    assert body["last_ts"] == named.json()["ts"]
    assert body["kinds"]["ingest"]["count"] == 1
    assert body["kinds"]["query"] == {"count": 1, "first_ts": named.json()["ts"], "last_ts": named.json()["ts"]}
    # Restarted on the same file: the same traces, and the id is still taken.
    async with app_client(create_app(config)) as client:
        assert (await client.get("/v1/pathway/traces/run-7")).json() == one.json()
        assert (await client.post("/v1/pathway/traces", json={**TRACE, "id": "run-7"})).status_code == 409
        assert (await client.get("/v1/pathway/stats")).json() == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": []}, "kind"),
        ({"kind": "x"}, "steps"),
        ({"kind": 5, "steps": []}, "kind"),
        ({"kind": "x", "steps": [{"input": 1}]}, "steps.0.name"),
        ({"kind": "x", "steps": [{"name": "a", "duration_ms": "5"}]}, "steps.0.duration_ms"),
        ({"kind": "x", "steps": [], "id": "has space"}, "id"),
        ({"kind": "x", "steps": [], "seq": 9}, "seq"),
        ({"kind": "x", "steps": [], "metadata": {"blob": "x" * (1 << 20)}}, "1048576"),
    ],
)
async def test_bad_traces_are_400_and_not_stored(make_config: ConfigFactory, body: dict[str, Any], field: str) -> None:
    async with app_client(create_app(make_config())) as client:
        response = await client.post("/v1/pathway/traces", json=body)
        stats = await client.get("/v1/pathway/stats")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert field in response.json()["error"]["message"]
    assert stats.json()["count"] == 0


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"after": "-1"},
        {"after": "x"},
        {"since": "yesterday"},
        {"until": "2026-01-01"},
    ],
)
async def test_bad_cursor_or_time_is_400(make_config: ConfigFactory, query: dict[str, str]) -> None:
    async with app_client(create_app(make_config())) as client:
        response = await client.get("/v1/pathway/traces", params=query)
    assert response.status_code == 400
    assert next(iter(query)) in response.json()["error"]["message"]
