"""Finding 2 of issue 23 and the SQL sandbox escapes that held: through the gateway's /v1/sql, SQL reads exactly the
catalogued datasets' data files, and no answer carries a path of the server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.security.harness import AttackStack, attack_stack

# {root}: storaged's object root; {storaged} / {catalogd} / {vectord}: those services' loopback ports.
HELD = [
    "select * from read_csv('/etc/passwd')",
    "select * from read_csv_auto('/etc/passwd')",
    "select * from read_json('/etc/hostname')",
    "select * from read_json_auto('/etc/hostname')",
    "select * from read_json_objects('/etc/hostname')",
    "select * from read_ndjson('/etc/hostname')",
    "select * from read_parquet('/etc/passwd')",
    "select * from parquet_scan('/etc/passwd')",
    "select * from parquet_metadata('/etc/passwd')",
    "select * from read_text('/etc/passwd')",
    "select * from read_blob('/etc/hostname')",
    "select * from glob('/*')",
    "select * from sniff_csv('/etc/passwd')",
    "select * from read_csv('{root}/../../../../etc/passwd')",
    "select * from read_text('file:///etc/passwd')",
    "select * from read_text('http://127.0.0.1:{storaged}/v1/storage/objects')",
    "select * from read_json('http://127.0.0.1:{catalogd}/v1/catalog/datasets')",
    "select * from read_text('http://127.0.0.1:{vectord}/v1/vectors')",
    "copy (select 1) to '/tmp/redteam.csv'",
    "copy trips to '{root}/datasets/trips/forged.parquet'",
    "attach '/tmp/redteam.db' as x",
    "attach ':memory:' as x",
    "install httpfs",
    "load httpfs",
    "set enable_external_access = true",
    "pragma threads = 1",
    "reset allowed_directories",
    "select 1; select 2",
    "select * from duckdb_secrets()",
]
# Issue 23's finding 2: internal objects, objects outside the catalog, and the server's own paths.
NEW = [
    "select * from read_text('{root}/_catalog/*/*.json')",
    "select * from read_blob('{root}/_catalog/trips/v0000000001.json')",
    "select * from glob('{root}/**')",
    "select * from glob('{root}/*')",
    "select * from read_text('{root}/vectord/**')",
    "select * from read_blob('{root}/vectord/manifest/*')",
    "select * from read_parquet('{root}/datasets/uncatalogued/part-00000.parquet')",
    "select * from read_blob('{root}/datasets/uncatalogued/part-00000.parquet')",
    "select * from glob('{root}/datasets/**')",
    "select * from duckdb_settings()",
    "select name, value from duckdb_settings() where name in ('allowed_directories', 'allowed_paths')",
    "select current_setting('allowed_directories')",
    "select current_setting('allowed_paths')",
    "select current_setting('temp_directory')",
    "select current_setting('file_search_path')",
    "select * from duckdb_temporary_files()",
    "select sql from duckdb_views()",
    "select view_definition from information_schema.views",
    "select sql from sqlite_master",
    "select * from query('select * from duckdb_settings()')",
    "select * from query_table('duckdb_settings')",
    "explain analyze select * from trips",
    "EXPLAIN (ANALYZE) select * from trips",
]


@pytest.fixture
async def attack(tmp_path: Path) -> AsyncIterator[AttackStack]:
    async with attack_stack(tmp_path) as stack:
        # A Parquet file in storaged that no dataset of the catalog names: SQL must not read it.
        buffer = io.BytesIO()
        pq.write_table(pa.table({"secret": ["s3cr3t"]}), buffer)
        put = await stack.http.put(
            f"{stack.gateway}/v1/storage/objects/datasets/uncatalogued/part-00000.parquet", content=buffer.getvalue()
        )
        assert put.status_code == 201, put.text
        yield stack


def fill(attack: AttackStack, sql: str) -> str:
    urls = {"storaged": attack.plane.storaged, "catalogd": attack.plane.catalogd, "vectord": attack.vectord}
    return sql.format(root=attack.root, **{name: str(urlsplit(url).port) for name, url in urls.items()})


def server_paths(attack: AttackStack) -> list[str]:
    """Paths that must never be in an answer: the object root (as configured and resolved) and the spill area."""
    return [str(attack.root), str(attack.root.resolve()), "queryd-spill-", "/tmp/", "/.duckdb"]


async def refused(attack: AttackStack, sql: str) -> httpx.Response:
    response = await attack.sql(fill(attack, sql))
    assert response.status_code in (400, 403), response.text
    error = response.json()["error"]
    assert (response.status_code, error["code"]) in ((403, "forbidden"), (400, "read_only")), error
    assert isinstance(error["message"], str)
    for path in server_paths(attack):
        assert path not in response.text, f"{path!r} in {response.text}"
    assert "secret" not in response.text.replace("duckdb_secrets", "")
    return response


@pytest.mark.parametrize("sql", HELD)
async def test_the_sandbox_escapes_that_held_still_do(attack: AttackStack, sql: str) -> None:
    await refused(attack, sql)


async def test_dml_inside_a_cte_is_refused(attack: AttackStack) -> None:
    # DuckDB's parser itself refuses DML in a CTE ("A CTE needs a SELECT"): 400 invalid_request, not read_only.
    response = await attack.sql("with gone as (delete from trips returning *) select * from gone")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("read_only", "invalid_request")
    assert (await attack.sql("select count(*) from trips")).json()["rows"] == [[3]]


@pytest.mark.parametrize("sql", NEW)
async def test_internal_objects_and_server_paths_are_out_of_reach(attack: AttackStack, sql: str) -> None:
    await refused(attack, sql)


async def test_the_catalogued_datasets_are_still_served(attack: AttackStack) -> None:
    response = await attack.sql("select count(*) as n from trips")
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[3]]
    manifest = (await attack.http.get(f"{attack.gateway}/v1/catalog/datasets/trips")).json()
    key = manifest["files"][0]["key"]
    by_path = await attack.sql(f"select count(*) from read_parquet('{attack.root / key}')")
    assert by_path.status_code == 200, by_path.text
    assert by_path.json()["rows"] == [[3]]


async def test_a_new_dataset_is_readable_once_catalogued_and_not_before(attack: AttackStack) -> None:
    ingested = await attack.http.post(
        f"{attack.gateway}/v1/ingest/later", content=b"a\n7\n", headers={"content-type": "text/csv"}
    )
    assert ingested.status_code == 201, ingested.text
    response = await attack.sql("select a from later")
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[7]]
    await refused(attack, "select * from read_parquet('{root}/datasets/uncatalogued/part-00000.parquet')")


@pytest.mark.parametrize(
    "sql",
    [
        "select filename from trips",
        "explain select * from trips",
        "select * from read_parquet('{root}/nope.parquet')",
        "select * from read_parquet('{root}/datasets/trips')",
        "select * from trips where",
        "describe trips",
    ],
)
async def test_no_answer_names_a_server_path(attack: AttackStack, sql: str) -> None:
    response = await attack.sql(fill(attack, sql))
    for path in server_paths(attack):
        assert path not in response.text, f"{path!r} in {response.text}"


async def test_an_error_naming_a_file_names_its_key_not_the_server_path(attack: AttackStack) -> None:
    response = await refused(attack, "select * from read_parquet('{root}/datasets/uncatalogued/part-00000.parquet')")
    assert "datasets/uncatalogued/part-00000.parquet" in response.json()["error"]["message"]
