"""DuckDB's iceberg extension (duckdb-extension-iceberg, at the project's DuckDB version) attaches the catalog,
reads an ingested dataset and an engine's table, and INSERTs rows that /v1/sql and pyiceberg then see."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from tests.support.lake import ACCESS_KEY, REGION, SECRET_KEY, Lake

EXTENSIONS = ("httpfs", "avro", "iceberg")


def extension(name: str) -> str:
    package = importlib.import_module(f"duckdb_extension_{name}")
    return str(
        Path(next(iter(package.__path__))) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    )


@pytest.fixture
def attached(lake: Lake) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for name in EXTENSIONS:
        con.execute(f"LOAD '{extension(name)}'")
    endpoint = lake.url.removeprefix("http://")
    con.execute(
        f"CREATE SECRET lake_s3 (TYPE s3, KEY_ID '{ACCESS_KEY}', SECRET '{SECRET_KEY}', REGION '{REGION}', "
        f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)"
    )
    con.execute(f"ATTACH 'warehouse' AS lake (TYPE ICEBERG, ENDPOINT '{lake.catalog_uri}', AUTHORIZATION_TYPE 'none')")
    yield con
    con.close()


def test_duckdb_reads_an_ingested_dataset(lake: Lake, attached: duckdb.DuckDBPyConnection) -> None:
    lake.ingest("fares", b"id,fare\n1,2.5\n2,4.0\n3,8.25\n", mode="replace")
    got = attached.execute("SELECT id, fare FROM lake.lakehouse.fares WHERE fare > 3 ORDER BY id").fetchall()
    assert [list(row) for row in got] == [
        [r["id"], r["fare"]] for r in lake.sql("SELECT id, fare FROM fares WHERE fare > 3 ORDER BY id")
    ]


def test_duckdb_inserts_into_an_engine_table(lake: Lake, attached: duckdb.DuckDBPyConnection) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("duck")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])
    catalog.create_table("duck.people", schema=schema).append(pa.table({"id": [1], "name": ["ada"]}, schema=schema))
    attached.execute("INSERT INTO lake.duck.people VALUES (2, 'grace'), (3, 'edsger')")
    assert attached.execute("SELECT count(*) FROM lake.duck.people").fetchone() == (3,)
    assert sorted(catalog.load_table("duck.people").scan().to_arrow().column("name").to_pylist()) == [
        "ada",
        "edsger",
        "grace",
    ]
    with lake.http() as http:
        versions = http.get("/v1/catalog/datasets/duck.people/versions").json()["versions"]
    assert versions[-1]["rows"] == 3
