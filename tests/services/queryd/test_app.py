"""queryd over HTTP on the real data plane: views after refresh, every output format, sandbox, timeouts, load."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from services.queryd.jsonvalues import batch_columns, dumps
from tests.support.dataplane import DataPlane, data_plane
from tests.support.storage import S3Server

CSV = (
    b"id,city,fare,day,seen_at,paid\n"
    b"1,amsterdam,12.5,2024-01-02,2024-01-02 10:00:00,true\n"
    b"2,berlin,,2024-01-03,2024-01-03 11:30:00,false\n"
    b"3,chicago,7.25,2024-01-04,,true\n"
)
RICH = """select id, city, fare, day, seen_at, paid, fare::decimal(10,2) as dec, [id, id * 2] as ids,
          {'c': city} as s, 'nan'::double as nan from trips order by id"""


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[DataPlane]:
    async with data_plane(tmp_path, queryd={"query_timeout_secs": 2}) as plane:
        response = await plane.ingest("trips", CSV)
        assert response.status_code == 201, response.text
        assert (await plane.http.post(f"{plane.queryd}/v1/sql/refresh")).status_code == 200
        yield plane


async def reference(plane: DataPlane, sql: str) -> pa.Table:
    """The same SQL on the same files, in this process, as the answer queryd must give."""
    assert plane.root is not None
    manifest = await plane.catalog.get_manifest("trips")
    files = [str(plane.root / f.key) for f in manifest.files]
    con = duckdb.connect()
    con.execute(f"create view trips as select * from read_parquet({files!r})")
    table = con.execute(sql).to_arrow_table()
    con.close()
    return table


def json_rows(table: pa.Table) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for batch in table.to_batches():
        rows.extend(map(list, zip(*batch_columns(batch), strict=True)))
    decoded: list[list[Any]] = json.loads(dumps(rows))
    return decoded


async def test_json(plane: DataPlane) -> None:
    response = await plane.sql(RICH)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = await reference(plane, RICH)
    assert [c["name"] for c in body["columns"]] == expected.column_names
    assert [c["type"] for c in body["columns"]][:6] == ["BIGINT", "VARCHAR", "DOUBLE", "DATE", "TIMESTAMP", "BOOLEAN"]
    assert body["rows"] == json_rows(expected)
    assert body["rows"][0][3:5] == ["2024-01-02", "2024-01-02T10:00:00"]
    assert body["rows"][1][2] is None
    assert body["rows"][0][6] == "12.50"
    assert body["rows"][0][9] == "NaN"
    assert body["row_count"] == 3
    assert body["truncated"] is False
    assert body["duration_ms"] >= 0


async def test_json_max_rows_truncates(plane: DataPlane) -> None:
    body = (await plane.sql("select * from range(100)", max_rows=7)).json()
    assert body["row_count"] == 7
    assert body["truncated"] is True


async def test_ndjson(plane: DataPlane) -> None:
    response = await plane.sql(RICH, accept="application/x-ndjson")
    assert response.headers["content-type"] == "application/x-ndjson"
    expected = await reference(plane, RICH)
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [list(line.values()) for line in lines] == json_rows(expected)
    assert list(lines[0]) == expected.column_names


async def test_csv(plane: DataPlane) -> None:
    sql = "select id, city, fare, day, seen_at, paid from trips order by id"
    response = await plane.sql(sql, accept="text/csv")
    assert response.headers["content-type"].startswith("text/csv")
    expected = await reference(plane, sql)
    got = list(csv.reader(io.StringIO(response.text)))
    assert got[0] == expected.column_names
    assert len(got) == 4
    assert got[1][:3] == ["1", "amsterdam", "12.5"]
    assert got[2][2] == ""


async def test_arrow_stream_round_trips_types_and_values(plane: DataPlane) -> None:
    response = await plane.sql(RICH, accept="application/vnd.apache.arrow.stream")
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(response.content).read_all()
    expected = await reference(plane, RICH)
    assert table.schema == expected.schema
    assert table.drop_columns(["nan"]).equals(expected.drop_columns(["nan"]))  # NaN != NaN
    assert math.isnan(table.column("nan")[0].as_py())
    assert table.num_rows == 3


async def test_streamed_formats_have_no_max_rows_cap(plane: DataPlane) -> None:
    sql = "select i, i * 2 as j from range(300000) t(i)"
    ndjson = await plane.sql(sql, accept="application/x-ndjson", max_rows=10)
    assert len(ndjson.text.splitlines()) == 300_000
    arrow = await plane.sql(sql, accept="application/vnd.apache.arrow.stream", max_rows=10)
    assert pa.ipc.open_stream(arrow.content).read_all().num_rows == 300_000
    csv_text = (await plane.sql(sql, accept="text/csv")).text
    assert len(csv_text.splitlines()) == 300_001


async def test_params(plane: DataPlane) -> None:
    body = (await plane.sql("select city from trips where id = ? or city = ?", params=[1, "chicago"])).json()
    assert sorted(r[0] for r in body["rows"]) == ["amsterdam", "chicago"]


async def test_a_new_version_is_seen_after_refresh(plane: DataPlane) -> None:
    await plane.ingest("trips", CSV)
    assert (await plane.sql("select count(*) from trips")).json()["rows"] == [[3]]
    refreshed = await plane.http.post(f"{plane.queryd}/v1/sql/refresh")
    assert refreshed.json()["datasets"] == [{"name": "trips", "version": 2, "files": 2}]
    assert (await plane.sql("select count(*) from trips")).json()["rows"] == [[6]]
    listed = await plane.http.get(f"{plane.queryd}/v1/sql/datasets")
    assert listed.json()["datasets"][0]["version"] == 2


async def test_refresh_every_polls_the_catalog(tmp_path: Path) -> None:
    async with data_plane(tmp_path, queryd={"refresh_every": "100ms"}) as plane:
        await plane.ingest("polled", CSV)
        for _ in range(200):
            if (await plane.sql("select count(*) from polled")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert (await plane.sql("select count(*) from polled")).json()["rows"] == [[3]]


@pytest.mark.parametrize(
    "sql",
    [
        "create table t (a int)",
        "attach ':memory:' as x",
        "select 1; select 2",
        "copy trips to '/tmp/out.csv'",
        "set enable_external_access = true",
        "install httpfs",
        "load httpfs",
    ],
)
async def test_writes_are_read_only(plane: DataPlane, sql: str) -> None:
    response = await plane.sql(sql)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "read_only"


@pytest.mark.parametrize(
    "sql",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/passwd')",
        "select * from glob('/')",
        "select * from read_parquet('/root/x.parquet')",
    ],
)
async def test_files_outside_the_lakehouse_are_refused(plane: DataPlane, sql: str) -> None:
    response = await plane.sql(sql)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_sql_errors(plane: DataPlane) -> None:
    unknown = await plane.sql("select * from nope")
    assert unknown.status_code == 400
    assert "datasets: trips" in unknown.json()["error"]["message"]
    bad = await plane.sql("selec 1")
    assert bad.status_code == 400
    assert "syntax error" in bad.json()["error"]["message"]
    wrong_accept = await plane.sql("select 1", accept="image/png")
    assert wrong_accept.status_code == 400
    missing = await plane.http.post(f"{plane.queryd}/v1/sql", json={"sq": "select 1"})
    assert missing.status_code == 400


async def test_a_timeout_is_504_while_other_queries_answer(plane: DataPlane) -> None:
    slow = asyncio.create_task(plane.sql("select count(*) from range(1000000000000) a"))
    await asyncio.sleep(0.2)
    fast = await plane.sql("select 42")
    health = await plane.http.get(f"{plane.queryd}/health")
    assert not slow.done()
    assert fast.json()["rows"] == [[42]]
    assert health.status_code == 200
    response = await slow
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "query_timeout"
    assert (await plane.sql("select 1")).status_code == 200


async def test_20_concurrent_queries(plane: DataPlane) -> None:
    responses = await asyncio.gather(*(plane.sql("select count(*) + ? from trips", params=[i]) for i in range(20)))
    assert [r.json()["rows"] for r in responses] == [[[3 + i]] for i in range(20)]


async def test_s3_backend_ingest_then_query(tmp_path: Path, s3: S3Server) -> None:
    async with data_plane(tmp_path, backend="s3", s3=s3) as plane:
        response = await plane.ingest("trips", CSV)
        assert response.status_code == 201, response.text
        await plane.http.post(f"{plane.queryd}/v1/sql/refresh")
        body = (await plane.sql("select city, fare from trips order by id")).json()
        assert body["rows"] == [["amsterdam", 12.5], ["berlin", None], ["chicago", 7.25]]
        assert (await plane.sql("select * from read_csv('/etc/passwd')")).status_code == 403


async def test_curl_dash_d_without_a_content_type_works(plane: DataPlane) -> None:
    # What the one-liner sends: curl -d '{"sql": ...}' (application/x-www-form-urlencoded).
    response = await plane.http.post(
        f"{plane.queryd}/v1/sql",
        content=b'{"sql": "select count(*) from trips"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.json()["rows"] == [[3]]
    refused = await plane.http.post(
        f"{plane.queryd}/v1/sql", content=b"select 1", headers={"content-type": "text/plain"}
    )
    assert refused.status_code == 415


async def test_a_dataset_ingested_since_the_last_poll_is_found_without_an_explicit_refresh(plane: DataPlane) -> None:
    # refresh_every is an hour here: the unknown-table answer makes queryd look at the catalog once.
    await plane.ingest("fresh", CSV)
    assert (await plane.sql("select count(*) from fresh")).json()["rows"] == [[3]]
    assert (await plane.sql("select * from still_missing")).status_code == 400
