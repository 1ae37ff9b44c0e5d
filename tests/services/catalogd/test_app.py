"""catalogd over HTTP, on a real storaged: manifests, versions, commit rules, delete, restart, and two catalogd
processes committing at once."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.catalogd.client import CatalogdClient, CatalogError
from services.catalogd.schemas import Column, DataFile
from services.storaged.client import StoragedClient
from tests.support.processes import served
from tests.support.storage import CatalogdService, start_catalogd

SCHEMA = [Column(name="id", type="int64", nullable=False), Column(name="name", type="string")]
DATASETS = "/v1/catalog/datasets"


def parquet(rows: int) -> bytes:
    """A real Parquet file of SCHEMA: a version is an Iceberg snapshot, whose manifest holds each file's statistics."""
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(rows)), "name": [f"n{i}" for i in range(rows)]}, schema=schema), sink)
    return sink.getvalue()


async def data_file(storage: StoragedClient, key: str, rows: int = 10) -> DataFile:
    put = await storage.put(key, parquet(rows))
    return DataFile(key=key, rows=rows, bytes=put.size)


async def test_create_read_and_list(catalogd: CatalogdService) -> None:
    async with StoragedClient(catalogd.storaged.url) as storage, CatalogdClient(catalogd.url) as catalog:
        part = await data_file(storage, "data/trips/part-0.parquet", rows=7)
        created = await catalog.commit("trips", "create", schema=SCHEMA, files=[part])
        current = await catalog.get_manifest("trips")
        first_poll = await catalog.poll_datasets(None)
        unchanged = await catalog.poll_datasets(first_poll.etag)
        more = await data_file(storage, "data/trips/part-1.parquet", rows=3)
        appended = await catalog.commit("trips", "append", schema=SCHEMA, files=[more], expected_version=1)
        changed = await catalog.poll_datasets(first_poll.etag)
        versions = await catalog.versions("trips")
        first = await catalog.get_version("trips", 1)
    assert created.name == "trips"
    assert created.version == 1
    assert created.rows == 7
    assert created.bytes == part.bytes
    assert created.columns == SCHEMA
    assert current == created
    assert [d.name for d in first_poll.datasets] == ["trips"]
    assert first_poll.changed
    assert not unchanged.changed
    assert changed.changed
    assert changed.datasets[0].version == 2
    assert appended.files == [part, more]
    assert appended.rows == 10
    assert appended.created_at == created.created_at
    assert appended.updated_at >= created.updated_at
    assert [(v.version, v.mode, v.rows) for v in versions] == [(1, "create", 7), (2, "append", 10)]
    assert first == created


async def test_wire_shapes(catalogd: CatalogdService) -> None:
    async with StoragedClient(catalogd.storaged.url) as storage, httpx.AsyncClient(base_url=catalogd.url) as http:
        part = await data_file(storage, "d/p.parquet")
        body = {
            "mode": "create",
            "schema": [
                {"name": "id", "type": "int64", "nullable": False},
                {"name": "name", "type": "string", "nullable": True},
            ],
            "files": [part.model_dump()],
        }
        created = await http.post(f"{DATASETS}/shapes/commits", json=body)
        listed = await http.get(DATASETS)
        not_modified = await http.get(DATASETS, headers={"if-none-match": listed.headers["etag"]})
        versions = await http.get(f"{DATASETS}/shapes/versions")
    assert created.status_code == 201
    manifest_fields = {"name", "version", "schema", "files", "rows", "bytes", "created_at", "updated_at"}
    assert set(created.json()) == manifest_fields | {"metadata_location", "snapshot_id"}
    assert created.json()["metadata_location"].startswith("s3://datasets/shapes/metadata/00001-")
    assert created.json()["snapshot_id"] == 1
    assert created.json()["schema"] == body["schema"]
    assert set(listed.json()["datasets"][0]) == {"name", "version", "rows", "bytes", "updated_at"}
    assert not_modified.status_code == 304
    assert set(versions.json()["versions"][0]) == {"version", "mode", "rows", "bytes", "created_at", "snapshot_id"}


async def test_commit_rules(catalogd: CatalogdService) -> None:
    async with StoragedClient(catalogd.storaged.url) as storage, CatalogdClient(catalogd.url) as catalog:
        part = await data_file(storage, "data/a.parquet")
        other = await data_file(storage, "data/b.parquet")
        await catalog.commit("rules", "create", schema=SCHEMA, files=[part])
        failures: dict[str, CatalogError] = {}
        attempts = {
            "create again": catalog.commit("rules", "create", schema=SCHEMA, files=[other]),
            "other schema": catalog.commit(
                "rules",
                "append",
                schema=[SCHEMA[0], Column(name="name", type="int32"), Column(name="extra", type="bool")],
                files=[other],
            ),
            "stale": catalog.commit("rules", "append", schema=SCHEMA, files=[other], expected_version=0),
            "missing file": catalog.commit(
                "rules", "append", schema=SCHEMA, files=[DataFile(key="data/nope", rows=1, bytes=1)]
            ),
            "wrong size": catalog.commit(
                "rules", "append", schema=SCHEMA, files=[DataFile(key=other.key, rows=1, bytes=999)]
            ),
            "bad name": catalog.commit("Bad-Name", "create", schema=SCHEMA, files=[]),
            "unknown": catalog.get_manifest("nobody"),
            "unknown version": catalog.get_version("rules", 9),
            "catalog key": catalog.commit(
                "rules", "append", schema=SCHEMA, files=[DataFile(key="_catalog/x", rows=0, bytes=0)]
            ),
        }
        for label, call in attempts.items():
            with pytest.raises(CatalogError) as caught:
                await call
            failures[label] = caught.value
        final = await catalog.get_manifest("rules")
    codes = {label: (e.status, e.code) for label, e in failures.items()}
    assert codes == {
        "create again": (409, "already_exists"),
        "other schema": (409, "schema_mismatch"),
        "stale": (409, "version_conflict"),
        "missing file": (400, "invalid_request"),
        "wrong size": (400, "invalid_request"),
        "bad name": (400, "invalid_request"),
        "unknown": (404, "not_found"),
        "unknown version": (404, "not_found"),
        "catalog key": (400, "invalid_request"),
    }
    mismatch = failures["other schema"].message
    assert "name is int32, was string" in mismatch
    assert "extra is new" in mismatch
    assert "data/nope" in failures["missing file"].message
    assert final.version == 1


async def test_append_creates_and_replace_time_travels(catalogd: CatalogdService) -> None:
    async with StoragedClient(catalogd.storaged.url) as storage, CatalogdClient(catalogd.url) as catalog:
        old = await data_file(storage, "t/old.parquet")
        new = await data_file(storage, "t/new.parquet", rows=99)
        first = await catalog.commit("events", "append", schema=SCHEMA, files=[old])
        narrow = [Column(name="id", type="int64")]
        replaced = await catalog.commit("events", "replace", schema=narrow, files=[new], expected_version=1)
        back = await catalog.get_version("events", 1)
    assert first.version == 1
    assert (replaced.version, replaced.files, replaced.rows, replaced.columns) == (2, [new], 99, narrow)
    assert back.files == [old]
    assert back.columns == SCHEMA


async def test_delete_removes_manifests_and_every_version_s_files(catalogd: CatalogdService) -> None:
    async with StoragedClient(catalogd.storaged.url) as storage, CatalogdClient(catalogd.url) as catalog:
        keep = await data_file(storage, "unrelated/keep.parquet")
        v1 = await data_file(storage, "gone/v1.parquet")
        v2 = await data_file(storage, "gone/v2.parquet")
        await catalog.commit("gone", "create", schema=SCHEMA, files=[v1])
        await catalog.commit("gone", "replace", schema=SCHEMA, files=[v2])
        await catalog.delete("gone")
        with pytest.raises(CatalogError) as again:
            await catalog.delete("gone")
        with pytest.raises(CatalogError) as read:
            await catalog.get_manifest("gone")
        remaining = [o.key async for o in storage.iter_objects()]
        listed = await catalog.list_datasets()
    assert again.value.code == read.value.code == "not_found"
    assert remaining == [keep.key]
    assert listed == []


async def test_restart_keeps_every_dataset_and_version(catalogd: CatalogdService) -> None:
    storaged = catalogd.storaged
    async with StoragedClient(storaged.url) as storage:
        async with start_catalogd(storaged.config, storaged.url) as url, CatalogdClient(url) as catalog:
            for name in ("one", "two"):
                for i in range(3):
                    part = await data_file(storage, f"{name}/{i}.parquet")
                    await catalog.commit(name, "append", schema=SCHEMA, files=[part])
            before = (await catalog.list_datasets(), await catalog.versions("one"), await catalog.get_manifest("two"))
        async with start_catalogd(storaged.config, storaged.url) as url, CatalogdClient(url) as catalog:
            after = (await catalog.list_datasets(), await catalog.versions("one"), await catalog.get_manifest("two"))
    assert after == before
    assert [d.version for d in after[0]] == [3, 3]


async def test_two_catalogd_processes_committing_concurrently_lose_nothing(tmp_path: Path) -> None:
    # As on separate boxes: storaged and two catalogd, each its own `lakehouse serve` process, talking HTTP only.
    # 100 appends race, eight in flight at a time, half through each catalogd: every one becomes a version.
    with (
        served("storaged", tmp_path, root=str(tmp_path / "objects")) as storaged_url,
        served("catalogd", tmp_path, storaged_url=storaged_url) as first_url,
        served("catalogd", tmp_path, storaged_url=storaged_url) as second_url,
    ):
        async with StoragedClient(storaged_url) as storage:
            parts = await asyncio.gather(*(data_file(storage, f"race/{i:03d}.parquet", rows=1) for i in range(100)))
        async with CatalogdClient(first_url) as first, CatalogdClient(second_url) as second:
            clients = [first, second]
            gate = asyncio.Semaphore(8)

            async def append(i: int, part: DataFile) -> int:
                async with gate:
                    manifest = await clients[i % 2].commit("race", "append", schema=SCHEMA, files=[part])
                    return manifest.version

            made = await asyncio.gather(*(append(i, part) for i, part in enumerate(parts)))
            final = await second.get_manifest("race")
            versions = await first.versions("race")
    assert sorted(made) == list(range(1, 101))
    assert final.version == 100
    assert sorted(f.key for f in final.files) == sorted(p.key for p in parts)
    assert final.rows == 100
    assert [v.version for v in versions] == list(range(1, 101))


async def test_a_corrupt_manifest_is_marked_and_every_other_dataset_still_served(catalogd: CatalogdService) -> None:
    root = catalogd.storaged.root
    assert root is not None
    async with StoragedClient(catalogd.storaged.url) as storage, httpx.AsyncClient(base_url=catalogd.url) as http:
        for name in ("good", "bad", "forged"):
            part = await data_file(storage, f"data/{name}/p.parquet")
            body = {"mode": "create", "schema": [c.model_dump() for c in SCHEMA], "files": [part.model_dump()]}
            assert (await http.post(f"{DATASETS}/{name}/commits", json=body)).status_code == 201
        good = (await http.get(f"{DATASETS}/good")).json()
        # Behind storaged's back, as a disk fault or a write through a door that should have been shut would.
        (root / "_catalog/bad/v0000000002.json").write_bytes(b'{"name": "bad", "versi')
        # Well-formed, but another dataset's manifest copied under this name: it must not be served as this one.
        (root / "_catalog/forged/v0000000002.json").write_text(json.dumps({**good, "mode": "replace"}))
        listed = await http.get(DATASETS)
        bad = await http.get(f"{DATASETS}/bad")
        forged = await http.get(f"{DATASETS}/forged")
        still_good = await http.get(f"{DATASETS}/good")
        older = await http.get(f"{DATASETS}/bad/versions/1")
        deleted = await http.delete(f"{DATASETS}/bad")
        after_delete = await http.get(DATASETS)
    assert listed.status_code == 200, listed.text
    by_name = {d["name"]: d for d in listed.json()["datasets"]}
    assert set(by_name) == {"good", "bad", "forged"}
    assert set(by_name["good"]) == {"name", "version", "rows", "bytes", "updated_at"}
    assert set(by_name["bad"]) == {"name", "version", "error"}
    assert by_name["bad"]["version"] == 2
    assert "_catalog/bad/v0000000002.json is not a valid manifest" in by_name["bad"]["error"]
    assert "says it is dataset 'good' version 1" in by_name["forged"]["error"]
    assert bad.status_code == 500
    assert bad.json()["error"]["code"] == "corrupt_manifest"
    assert "dataset 'bad' version 2" in bad.json()["error"]["message"]
    assert forged.status_code == 500
    assert forged.json()["error"]["code"] == "corrupt_manifest"
    assert still_good.json() == good
    assert older.status_code == 200
    assert deleted.status_code == 204
    assert [d["name"] for d in after_delete.json()["datasets"]] == ["forged", "good"]
    assert not (root / "_catalog/bad").exists() or not any((root / "_catalog/bad").iterdir())
