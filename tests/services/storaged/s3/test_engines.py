"""The engines a data team points at S3, unchanged, against moto and against storaged's S3 API: DuckDB's httpfs
(secrets, COPY TO, globbed read_parquet) and pyarrow's S3FileSystem (the AWS C++ SDK)."""

from __future__ import annotations

from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from services.queryd.engine import httpfs_extension_path
from tests.services.storaged.s3.conftest import Endpoint


def test_duckdb_writes_and_reads_parquet_over_s3(endpoint: Endpoint) -> None:
    endpoint.client().create_bucket(Bucket="lake")
    db = duckdb.connect()
    db.execute(f"LOAD '{httpfs_extension_path()}'")
    db.execute(
        "CREATE SECRET lake (TYPE s3, KEY_ID ?, SECRET ?, REGION 'us-east-1', ENDPOINT ?, URL_STYLE 'path', "
        "USE_SSL false)",
        [endpoint.access_key, endpoint.secret_key, urlsplit(endpoint.url).netloc],
    )
    for part in range(2):
        db.execute(
            f"COPY (SELECT range AS id, 'row ' || range AS label FROM range({part * 50_000}, {(part + 1) * 50_000})) "
            f"TO 's3://lake/events/part-{part}.parquet' (FORMAT parquet)"
        )
    count, total = db.execute("SELECT count(*), sum(id) FROM read_parquet('s3://lake/events/*.parquet')").fetchone()  # type: ignore[misc]
    assert (count, total) == (100_000, sum(range(100_000)))
    files = db.execute("SELECT file FROM glob('s3://lake/events/*') ORDER BY file").fetchall()
    assert files == [("s3://lake/events/part-0.parquet",), ("s3://lake/events/part-1.parquet",)]


def test_pyarrow_s3_filesystem_writes_lists_and_reads(endpoint: Endpoint) -> None:
    endpoint.client().create_bucket(Bucket="arrow")
    url = urlsplit(endpoint.url)
    s3 = fs.S3FileSystem(
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        endpoint_override=url.netloc,
        scheme="http",
        region="us-east-1",
    )
    table = pa.table({"id": list(range(10_000)), "name": [f"n{i}" for i in range(10_000)]})
    pq.write_table(table, "arrow/tables/t.parquet", filesystem=s3)
    infos = s3.get_file_info(fs.FileSelector("arrow/tables", recursive=True))
    assert [(i.path, i.type) for i in infos] == [("arrow/tables/t.parquet", fs.FileType.File)]
    assert pq.read_table("arrow/tables/t.parquet", filesystem=s3).equals(table)
    with s3.open_input_file("arrow/tables/t.parquet") as f:
        assert f.read(4) == b"PAR1"
    s3.delete_file("arrow/tables/t.parquet")
    assert s3.get_file_info("arrow/tables/t.parquet").type == fs.FileType.NotFound
