"""ingestd over HTTP against real storaged and catalogd: formats, modes, every bad input, 413, no orphans."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scripts.net import free_port
from tests.support.dataplane import DataPlane, data_plane
from tests.support.storage import S3Server

CSV = b"id,city,fare,day\n1,amsterdam,12.5,2024-01-02\n2,berlin,,2024-01-03\n3,chicago,7.25,2024-01-04\n"
# Small parts, so a failure late in a file happens after earlier parts were already uploaded.
SMALL_PARTS = {"row_group_rows": 5_000, "target_file_bytes": 32 << 10}


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[DataPlane]:
    async with data_plane(tmp_path, ingestd=SMALL_PARTS) as plane:
        yield plane


def many_rows(rows: int) -> bytes:
    return b"id,name\n" + b"".join(b"%d,name-%d\n" % (i, i) for i in range(rows))


async def test_csv_raw(plane: DataPlane) -> None:
    response = await plane.ingest("trips", CSV)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["dataset"] == "trips"
    assert body["version"] == 1
    assert body["mode"] == "append"
    assert body["rows"] == 3
    assert body["bytes_in"] == len(CSV)
    assert [c["type"] for c in body["schema"]] == ["int64", "string", "double", "date32[day]"]
    assert {f["key"] for f in body["files"]} == set(await plane.objects())
    manifest = await plane.catalog.get_manifest("trips")
    assert manifest.rows == 3
    assert [f.key for f in manifest.files] == [f["key"] for f in body["files"]]
    assert plane.root is not None
    table = pq.read_table(plane.root / body["files"][0]["key"])
    assert table.column("fare").to_pylist() == [12.5, None, 7.25]


async def test_multipart_with_the_format_from_the_file_name(plane: DataPlane) -> None:
    ndjson = b'{"id": 1, "tags": ["a"]}\n{"id": 2, "tags": []}\n'
    response = await plane.http.post(
        f"{plane.ingestd}/v1/ingest/events", files={"file": ("events.ndjson", ndjson, "application/octet-stream")}
    )
    assert response.status_code == 201, response.text
    assert response.json()["rows"] == 2
    assert [c["type"] for c in response.json()["schema"]] == ["int64", "list<item: string>"]


async def test_multipart_csv_like_curl_dash_f(plane: DataPlane) -> None:
    response = await plane.http.post(f"{plane.ingestd}/v1/ingest/trips", files={"file": ("trips.csv", CSV)})
    assert response.status_code == 201, response.text
    assert response.json()["rows"] == 3


async def test_a_tsv_file_is_tab_separated_unless_the_query_says_otherwise(plane: DataPlane) -> None:
    tsv = b"id\tcity, country\n1\tlisbon, pt\n2\tporto, pt\n"
    by_name = await plane.http.post(f"{plane.ingestd}/v1/ingest/tsv", files={"file": ("places.tsv", tsv)})
    assert by_name.status_code == 201, by_name.text
    assert [c["name"] for c in by_name.json()["schema"]] == ["id", "city, country"]
    said = await plane.http.post(
        f"{plane.ingestd}/v1/ingest/said?delimiter=,", files={"file": ("places.tsv", b"a,b\n1,2\n")}
    )
    assert [c["name"] for c in said.json()["schema"]] == ["a", "b"]


async def test_parquet_raw(plane: DataPlane) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2], "y": ["a", "b"]}), sink)
    response = await plane.ingest("pq", sink.getvalue(), headers={"content-type": "application/vnd.apache.parquet"})
    assert response.status_code == 201, response.text
    assert response.json()["rows"] == 2


@pytest.mark.parametrize(("file_name", "query"), [("trips.parquet", ""), ("upload.bin", "format=parquet")])
async def test_parquet_multipart(plane: DataPlane, file_name: str, query: str) -> None:
    # The format from the part's file name, or from the query when the name says nothing; the rows and types
    # that come out in storaged are the ones that went in.
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "city": ["amsterdam", None, "chicago"],
            "fare": [12.5, 3.0, None],
            "at": pa.array([0, 1_000_000, 2_000_000], pa.timestamp("us")),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    response = await plane.http.post(
        f"{plane.ingestd}/v1/ingest/trips" + (f"?{query}" if query else ""),
        files={"file": (file_name, sink.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rows"] == 3
    assert [(c["name"], c["type"]) for c in body["schema"]] == [
        ("id", "int64"),
        ("city", "string"),
        ("fare", "double"),
        ("at", "timestamp[us]"),
    ]
    assert plane.root is not None
    stored = pa.concat_tables(pq.read_table(plane.root / f["key"]) for f in body["files"])
    assert stored.to_pylist() == table.to_pylist()


async def test_format_query_wins_over_content_type(plane: DataPlane) -> None:
    response = await plane.ingest("n", b'{"a": 1}\n', "format=ndjson")
    assert response.status_code == 201, response.text


async def test_csv_options_through_the_query(plane: DataPlane) -> None:
    response = await plane.ingest("opts", b"007;NA\n8;x\n", "delimiter=%3B&header=false&null=NA&types=f0:string")
    assert response.status_code == 201, response.text
    assert response.json()["schema"] == [
        {"name": "f0", "type": "string", "nullable": True},
        {"name": "f1", "type": "string", "nullable": True},
    ]


async def test_large_upload_is_split_into_several_files(plane: DataPlane) -> None:
    response = await plane.ingest("big", many_rows(50_000))
    assert response.status_code == 201, response.text
    body = response.json()
    assert len(body["files"]) > 1
    assert sum(f["rows"] for f in body["files"]) == body["rows"] == 50_000


BAD_INPUTS = {
    "ragged": (b"a,b\n1,2\n3\n", "csv", "line 3: expected 2 columns, got 1"),
    "late type": (many_rows(150_000) + b"oops,x\n", "csv", "line 150002, column 'id': value 'oops' is not int64"),
    "utf8": (b"a,b\n1,caf\xe9\n", "csv", "line 2, column 'b': invalid UTF-8"),
    "late utf8": (many_rows(150_000) + b"1,caf\xe9\n", "csv", "line 150002, column 'name': invalid UTF-8"),
    "empty": (b"", "csv", "empty upload"),
    "not parquet": (b"a,b\n1,2\n", "parquet", "not a Parquet file"),
    "ndjson array": (b'{"a": 1}\n[1]\n', "ndjson", "line 2: expected a JSON object, got an array"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
async def test_bad_input_is_a_400_and_leaves_nothing(plane: DataPlane, case: str) -> None:
    data, fmt, expected = BAD_INPUTS[case]
    response = await plane.ingest("bad", data, f"format={fmt}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert expected in response.json()["error"]["message"]
    assert not await plane.registered("bad")
    assert await plane.objects() == []


async def test_bad_name_and_bad_options(plane: DataPlane) -> None:
    assert (await plane.ingest("Bad-Name", CSV)).status_code == 400
    assert "mode" in (await plane.ingest("t", CSV, "mode=upsert")).json()["error"]["message"]
    assert "unknown query parameter" in (await plane.ingest("t", CSV, "delimeter=;")).json()["error"]["message"]


async def test_413_mid_stream_leaves_nothing(tmp_path: Path) -> None:
    async with data_plane(tmp_path, ingestd={**SMALL_PARTS, "max_ingest_bytes": 1 << 20}) as plane:

        async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse up front
            yield b"id,name\n"
            for start in range(0, 3_000_000, 50_000):
                yield b"".join(b"%d,n\n" % i for i in range(start, start + 50_000))[:65536]

        response = await plane.http.post(
            f"{plane.ingestd}/v1/ingest/big", content=body(), headers={"content-type": "text/csv"}
        )
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        assert not await plane.registered("big")
        assert await plane.objects() == []
        assert not [p.name for p in tmp_path.iterdir() if p.suffix in (".spool", ".parquet")]  # noqa: ASYNC240


async def test_modes(plane: DataPlane) -> None:
    assert (await plane.ingest("t", CSV, "mode=create")).json()["version"] == 1
    again = await plane.ingest("t", CSV, "mode=create")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_exists"
    appended = await plane.ingest("t", CSV)
    assert appended.json()["version"] == 2
    assert (await plane.catalog.get_manifest("t")).rows == 6
    replaced = await plane.ingest("t", b"id,city,fare,day\n9,x,1.0,2024-02-02\n", "mode=replace")
    assert replaced.json()["version"] == 3
    manifest = await plane.catalog.get_manifest("t")
    assert manifest.rows == 1
    kept = {f.key for f in manifest.files}
    # The replaced version's files stay: time travel reads them.
    assert kept < set(await plane.objects())


async def test_append_with_another_schema_is_409_and_leaves_no_object(plane: DataPlane) -> None:
    first = await plane.ingest("t", CSV)
    before = set(await plane.objects())
    response = await plane.ingest("t", b"other\n1\n")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "schema_mismatch"
    assert set(await plane.objects()) == before
    assert (await plane.catalog.get_manifest("t")).version == first.json()["version"]


async def test_catalog_down_leaves_no_orphan(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with data_plane(tmp_path, catalogd_url=closed, ingestd=SMALL_PARTS) as plane:
        response = await plane.ingest("t", many_rows(20_000))
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unavailable"
        assert await plane.objects() == []


async def test_response_is_json_with_every_field(plane: DataPlane) -> None:
    body = (await plane.ingest("t", CSV)).json()
    assert set(body) == {
        "dataset",
        "version",
        "mode",
        "rows",
        "files",
        "bytes_in",
        "bytes_out",
        "schema",
        "duration_ms",
    }
    assert body["bytes_out"] == sum(f["bytes"] for f in body["files"])
    json.dumps(body)


async def test_s3_backend_ingest_and_no_orphans(tmp_path: Path, s3: S3Server) -> None:
    async with data_plane(tmp_path, backend="s3", s3=s3, ingestd=SMALL_PARTS) as plane:
        good = await plane.ingest("t", many_rows(20_000))
        assert good.status_code == 201, good.text
        assert {f["key"] for f in good.json()["files"]} == set(await plane.objects())
        before = set(await plane.objects())
        bad = await plane.ingest("t", many_rows(150_000) + b"oops,x\n")
        assert bad.status_code == 400
        assert set(await plane.objects()) == before


class ClientGone(Exception):
    pass


async def test_client_gone_mid_upload_leaves_no_orphan(plane: DataPlane) -> None:
    sent_parts = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"id,name\n"
        for start in range(0, 400_000, 20_000):
            yield b"".join(b"%d,name-%d\n" % (i, i) for i in range(start, start + 20_000))
            if start >= 200_000 and await plane.objects():
                sent_parts.set()  # parts already reached storaged: now vanish
                break
            await asyncio.sleep(0.05)
        raise ClientGone

    with pytest.raises((ClientGone, httpx.HTTPError)):
        await plane.http.post(f"{plane.ingestd}/v1/ingest/gone", content=body(), headers={"content-type": "text/csv"})
    assert sent_parts.is_set()
    for _ in range(200):
        if not await plane.objects():
            break
        await asyncio.sleep(0.05)
    assert await plane.objects() == []
    assert not await plane.registered("gone")
