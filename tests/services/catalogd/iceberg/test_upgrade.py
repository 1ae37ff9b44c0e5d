"""Datasets a catalog stored before it spoke Iceberg: listed, queried and loadable as tables, their metadata derived
once on first load (never rewritten), and the next ingest builds on it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.support.lake import Lake


def old_version(root: Path, name: str, version: int, mode: str, files: list[tuple[str, pa.Table]]) -> None:
    """A version object exactly as the catalog wrote it before Iceberg (no metadata_location, no snapshot_id)."""
    listed = []
    for key, table in files:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        path = root / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sink.getvalue())
        listed.append({"key": key, "rows": table.num_rows, "bytes": path.stat().st_size})
    stamp = f"2026-01-0{version}T00:00:00Z"
    manifest = {
        "name": name,
        "version": version,
        "schema": [{"name": "id", "type": "int64", "nullable": True}],
        "files": listed,
        "rows": sum(f["rows"] for f in listed),
        "bytes": sum(f["bytes"] for f in listed),
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": stamp,
        "mode": mode,
    }
    target = root / f"_catalog/{name}/v{version:010d}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(manifest))


def test_a_dataset_from_before_iceberg_is_a_table_with_its_whole_history(lake: Lake) -> None:
    first = ("datasets/legacy/r1/part-00000.parquet", pa.table({"id": [1, 2]}))
    second = ("datasets/legacy/r2/part-00000.parquet", pa.table({"id": [3]}))
    old_version(lake.root, "legacy", 1, "create", [first])
    old_version(lake.root, "legacy", 2, "append", [first, second])
    assert lake.sql("SELECT count(*) AS n FROM legacy") == [{"n": 3}]

    table = lake.pyiceberg().load_table("lakehouse.legacy")
    assert [s.snapshot_id for s in table.snapshots()] == [1, 2]
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3]
    assert sorted(table.scan(snapshot_id=1).to_arrow().column("id").to_pylist()) == [1, 2]
    derived = sorted((lake.root / "datasets/legacy/metadata").glob("legacy-*.metadata.json"))
    assert [p.name for p in derived] == ["legacy-00001.metadata.json", "legacy-00002.metadata.json"]
    stamps = [p.stat().st_mtime_ns for p in derived]

    lake.pyiceberg().load_table("lakehouse.legacy")  # derived once: a second load reads what the first wrote
    assert [p.stat().st_mtime_ns for p in derived] == stamps

    lake.ingest("legacy", b"id\n4\n")
    table = lake.pyiceberg().load_table("lakehouse.legacy")
    assert [s.snapshot_id for s in table.snapshots()] == [1, 2, 3]
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == [1, 2, 3, 4]
