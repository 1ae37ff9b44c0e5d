"""Daft (`daft.read_iceberg`, the road to Ray) reads an engine's table through the catalog: the same rows as /v1/sql.
Daft pins pyarrow below the project's, so it runs in its own environment, made by uv from PyPI.

Not an ingested dataset: ingestd's Parquet files carry no Iceberg field ids, so the table maps names to ids
(`schema.name-mapping.default`), which pyiceberg, DuckDB and Spark apply and Daft 0.7.26 refuses ("Daft does not
apply yet"); docs/iceberg.md says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from tests.support.lake import ACCESS_KEY, SECRET_KEY, Lake

DAFT = "daft==0.7.26"
PYICEBERG = "pyiceberg==0.12.0"
READER = Path(__file__).with_name("daft_reader.py")


def test_daft_reads_an_ingested_dataset_like_sql(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("daft")
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("km", pa.float64())])
    table = catalog.create_table("daft.rides", schema=schema)
    table.append(pa.table({"id": [1, 2, 3, 4], "km": [3.5, 12.0, 0.5, 7.25]}, schema=schema))
    uv = shutil.which("uv")
    assert uv is not None, "uv is on PATH wherever the suite runs (the README's test command is uv run just verify)"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    command = [
        uv,
        "run",
        "--no-project",
        "--python",
        python,
        "--with",
        DAFT,
        "--with",
        PYICEBERG,
        "python",
        str(READER),
    ]
    env = {**os.environ, "LAKE_ACCESS_KEY": ACCESS_KEY, "LAKE_SECRET_KEY": SECRET_KEY, "VIRTUAL_ENV": ""}
    done = subprocess.run(
        [*command, lake.catalog_uri, "daft.rides", "km", "1.0"],
        capture_output=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    read = json.loads(done.stdout.decode().strip().splitlines()[-1])
    rows = lake.sql("SELECT id, km FROM daft.rides WHERE km > 1.0 ORDER BY id")
    assert read == {"id": [r["id"] for r in rows], "km": [r["km"] for r in rows]}
    assert read["id"] == [1, 2, 4]
