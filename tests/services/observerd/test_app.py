from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from services.observerd.app import create_app
from shared.jsonlog.timestamps import TimestampCodec
from tests.support.fixtures import ConfigFactory
from tests.support.servers import app_client


def op(service: str, name: str, status: str = "ok", duration: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"service": service, "op": name, "status": status}
    if duration is not None:
        body["duration_ms"] = duration
    return body


async def test_one_op_or_a_batch_and_filtered_listing(make_config: ConfigFactory) -> None:
    async with app_client(create_app(make_config())) as client:
        one = await client.post("/v1/observer/ops", json=op("queryd", "sql", duration=3))
        batch = await client.post(
            "/v1/observer/ops", json={"ops": [op("queryd", "sql", "error"), op("ingestd", "csv")]}
        )
        errors = await client.get("/v1/observer/ops", params={"status": "error"})
        ingest = await client.get("/v1/observer/ops", params={"service": "ingestd", "op": "csv"})
        paged = await client.get("/v1/observer/ops", params={"limit": 2})
        rest = await client.get("/v1/observer/ops", params={"limit": 2, "after": paged.json()["next"]})
    assert one.status_code == 201
    assert one.json()["seq"] == 1
    assert batch.status_code == 201
    assert batch.json()["seqs"] == [2, 3]
    assert [item["seq"] for item in errors.json()["items"]] == [2]
    assert [item["service"] for item in ingest.json()["items"]] == ["ingestd"]
    assert [item["seq"] for item in paged.json()["items"]] == [1, 2]
    assert paged.json()["next"] == 2
    assert rest.json() == {"items": [ingest.json()["items"][0]], "next": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"op": "x", "status": "ok"}, "service"),
        (op("s", "x", "maybe"), "status"),
        ({**op("s", "x"), "duration_ms": "fast"}, "duration_ms"),
        ({"ops": [op("s", "x"), op("s", "y", "bad")]}, "ops.1.status"),
        ({"ops": []}, "ops"),
        ({"ops": [op("s", "x")] * 1001}, "ops"),
        ({**op("s", "x"), "attrs": {"blob": "x" * (1 << 20)}}, "1048576"),
        ({"ops": [op("s", "x"), {**op("s", "x"), "attrs": {"blob": "x" * (1 << 20)}}]}, "record 1"),
    ],
)
async def test_bad_ops_are_400_and_nothing_is_stored(
    make_config: ConfigFactory, body: dict[str, Any], field: str
) -> None:
    async with app_client(create_app(make_config())) as client:
        response = await client.post("/v1/observer/ops", json=body)
        listing = await client.get("/v1/observer/ops")
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]
    assert listing.json() == {"items": [], "next": None}


async def test_summary_matches_a_hand_computed_set(make_config: ConfigFactory) -> None:
    ops = [op("queryd", "sql", "ok", d) for d in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)]
    ops += [op("queryd", "sql", "error", 500), op("queryd", "sql", "error")]
    ops += [op("ingestd", "csv", "ok", 7), op("ingestd", "csv", "ok", 3), op("ingestd", "csv", "error", 5)]
    ops += [op("ingestd", "ping")]
    async with app_client(create_app(make_config())) as client:
        assert (await client.post("/v1/observer/ops", json={"ops": ops})).status_code == 201
        summary = await client.get("/v1/observer/summary", params={"window": "1h"})
        bad = await client.get("/v1/observer/summary", params={"window": "soon"})
    assert summary.status_code == 200
    assert summary.json()["window"] == "1h"
    # Nearest rank: p50 of n values is the ceil(0.5 n)-th smallest, p95 the ceil(0.95 n)-th.
    assert summary.json()["ops"] == [
        {"service": "ingestd", "op": "csv", "count": 3, "errors": 1, "error_rate": 1 / 3, "p50_ms": 5.0, "p95_ms": 7.0},
        {
            "service": "ingestd",
            "op": "ping",
            "count": 1,
            "errors": 0,
            "error_rate": 0.0,
            "p50_ms": None,
            "p95_ms": None,
        },
        # 11 durations (the op without one is counted, not timed): 6th smallest is 60, 11th is 500.
        {
            "service": "queryd",
            "op": "sql",
            "count": 12,
            "errors": 2,
            "error_rate": 2 / 12,
            "p50_ms": 60.0,
            "p95_ms": 500.0,
        },
    ]
    assert bad.status_code == 400
    assert "window" in bad.json()["error"]["message"]


async def test_summary_leaves_out_ops_older_than_the_window(make_config: ConfigFactory, tmp_path: Path) -> None:
    path = tmp_path / "ops.jsonl"
    two_hours_ago = TimestampCodec().format((int(time.time()) - 7200) * 1_000_000)
    path.write_text(f'{{"seq":1,"ts":"{two_hours_ago}","service":"old","op":"x","status":"ok"}}\n')
    async with app_client(create_app(make_config(observerd={"persist_path": str(path)}))) as client:
        await client.post("/v1/observer/ops", json=op("new", "x"))
        hour = await client.get("/v1/observer/summary", params={"window": "1h"})
        day = await client.get("/v1/observer/summary", params={"window": "1d"})
    assert [row["service"] for row in hour.json()["ops"]] == ["new"]
    assert [row["service"] for row in day.json()["ops"]] == ["new", "old"]
