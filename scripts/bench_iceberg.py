"""`just bench-iceberg`: the REST catalog against pyiceberg's own in-process SqlCatalog (sqlite), same run, same files
(both write through the lakehouse's S3 API): table load p50 and sequential append commits/s; then a pyiceberg scan of
a 1M-row ingested dataset vs DuckDB reading the same Parquet files directly.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.catalog.sql import SqlCatalog

from scripts.benchlib import load_average
from scripts.datastack import data_stack

ACCESS_KEY = "bench-iceberg"
SECRET_KEY = "bench-iceberg-secret-0123456789"
SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("amount", pa.float64())])


def appends_per_second(catalog: Catalog, name: str, count: int) -> float:
    table = catalog.create_table(name, schema=SCHEMA)
    table.append(pa.table({"id": [0], "amount": [0.0]}, schema=SCHEMA))  # warm-up
    started = time.perf_counter()
    for i in range(count):
        table.append(pa.table({"id": [i], "amount": [float(i)]}, schema=SCHEMA))
    return count / (time.perf_counter() - started)


def load_p50_ms(load: Callable[[], object], count: int) -> float:
    load()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        load()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def best_seconds(run: Callable[[], int], rounds: int) -> tuple[float, int]:
    best = (float("inf"), 0)
    for _ in range(rounds):
        started = time.perf_counter()
        rows = run()
        best = min(best, (time.perf_counter() - started, rows))
    return best


def ingest_rows(gateway: str, name: str, rows: int) -> None:
    lines = ["trip_id,city,fare"] + [f"{i},{i % 97},{(i * 7919) % 10000 / 100}" for i in range(rows)]
    with httpx.Client(timeout=600) as http:
        response = http.post(f"{gateway}/v1/ingest/{name}?mode=replace", content="\n".join(lines).encode())
    response.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appends", type=int, default=50)
    parser.add_argument("--loads", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    env = {"LH_S3_API__ACCESS_KEY_ID": ACCESS_KEY, "LH_S3_API__SECRET_ACCESS_KEY": SECRET_KEY}
    with tempfile.TemporaryDirectory() as work, data_stack(Path(work), **env) as stack:
        s3 = {
            "s3.endpoint": stack.gateway,
            "s3.access-key-id": ACCESS_KEY,
            "s3.secret-access-key": SECRET_KEY,
            "s3.region": "us-east-1",
        }
        rest = RestCatalog("lake", uri=f"{stack.gateway}/v1/iceberg", **s3)
        sql = SqlCatalog("peer", uri=f"sqlite:///{work}/peer.db", warehouse="s3://warehouse/peer", **s3)
        rest.create_namespace("bench")
        sql.create_namespace("bench")
        ours_rate = appends_per_second(rest, "bench.appends", args.appends)
        peer_rate = appends_per_second(sql, "bench.appends", args.appends)
        ours_load = load_p50_ms(lambda: rest.load_table("bench.appends"), args.loads)
        peer_load = load_p50_ms(lambda: sql.load_table("bench.appends"), args.loads)

        ingest_rows(stack.gateway, "scan", args.rows)
        table = rest.load_table("lakehouse.scan")
        files = [str(stack.root / task.file.file_path.removeprefix("s3://")) for task in table.scan().plan_files()]
        scan = best_seconds(lambda: table.scan().to_arrow().num_rows, 3)
        con = duckdb.connect()
        direct = best_seconds(
            lambda: con.execute("SELECT * FROM read_parquet(?)", [files]).to_arrow_table().num_rows, 3
        )

    print(f"\n| {args.appends} sequential 1-row appends, then {args.loads} loads | REST catalog | SqlCatalog | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| append commits/s | {ours_rate:.1f} | {peer_rate:.1f} | {ours_rate / peer_rate:.2f}x |")
    print(f"| table load p50 ms ({args.appends + 1} snapshots) | {ours_load:.1f} | {peer_load:.1f} | |")
    print(f"\n| scan of {args.rows:,} ingested rows | s | rows |")
    print("|---|---:|---:|")
    print(f"| pyiceberg RestCatalog scan().to_arrow() | {scan[0]:.2f} | {scan[1]:,} |")
    print(f"| DuckDB read_parquet, same files | {direct[0]:.2f} | {direct[1]:,} |")
    print(f"| ratio | {direct[0] / scan[0]:.2f}x | |")
    print(f"\nload average at the end: {load_average()}\n")


if __name__ == "__main__":
    main()
