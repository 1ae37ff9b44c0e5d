"""pyiceberg's RestCatalog against the whole lakehouse through the gateway: what it reads equals /v1/sql, what it
writes is in /v1/sql and the native catalog, and every version is a snapshot both ways."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.exceptions import (
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import DoubleType, LongType, NestedField, StringType

from tests.support.lake import Lake

RETRIES = {"commit.retry.num-retries": "40", "commit.retry.min-wait-ms": "10", "commit.retry.max-wait-ms": "500"}
ORDERS = pa.schema([pa.field("id", pa.int64()), pa.field("amount", pa.float64())])


def eventually(lake: Lake, query: str, expected: list[dict[str, Any]], within_secs: float = 3.0) -> None:
    """`query` answers `expected` within `within_secs` (queryd looks at the catalog at most 1 s after a commit)."""
    deadline = time.monotonic() + within_secs
    with lake.http() as http:
        while True:
            response = http.post("/v1/sql", json={"sql": query})
            answered = response.json()
            rows = (
                [dict(zip([c["name"] for c in answered["columns"]], row, strict=True)) for row in answered["rows"]]
                if response.status_code == 200
                else answered
            )
            if rows == expected or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert rows == expected


def test_config_names_the_s3_endpoint_engines_read_files_through(lake: Lake) -> None:
    with lake.http() as http:
        config = http.get("/v1/iceberg/v1/config").json()
    assert config["overrides"]["s3.endpoint"] == lake.url
    assert config["overrides"]["s3.path-style-access"] == "true"
    assert config["overrides"]["s3.region"] == "us-east-1"
    assert "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}" in config["endpoints"]


def test_an_ingested_dataset_is_a_table_whose_scan_equals_sql(lake: Lake) -> None:
    lake.ingest("trips", b"id,city,fare\n1,Oslo,10.5\n2,Rome,7.25\n3,Oslo,3.0\n", mode="replace")
    lake.ingest("trips", b"id,city,fare\n4,Lima,12.0\n5,Oslo,1.5\n")
    catalog = lake.pyiceberg()
    assert ("lakehouse", "trips") in catalog.list_tables("lakehouse")
    table = catalog.load_table("lakehouse.trips")
    scanned = table.scan(row_filter="fare > 2.0", selected_fields=("id", "city")).to_arrow()
    through_sql = lake.sql("SELECT id, city FROM trips WHERE fare > 2.0 ORDER BY id")
    assert sorted(scanned.to_pylist(), key=lambda r: r["id"]) == through_sql
    assert [r["id"] for r in through_sql] == [1, 2, 3, 4]

    # One history, read both ways: each catalog version is the snapshot of the same id, and time travel to it
    # reads that version's rows.
    with lake.http() as http:
        versions = http.get("/v1/catalog/datasets/trips/versions").json()["versions"]
    assert [v["snapshot_id"] for v in versions] == [s.snapshot_id for s in table.snapshots()]
    assert [v["rows"] for v in versions] == [3, 5]
    first = table.scan(snapshot_id=versions[0]["snapshot_id"]).to_arrow()
    assert sorted(first.column("id").to_pylist()) == [1, 2, 3]


def test_an_engine_creates_appends_overwrites_deletes_and_adds_a_column(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("sales", {"owner": "finance"})
    assert catalog.load_namespace_properties("sales") == {"owner": "finance"}
    table = catalog.create_table("sales.orders", schema=ORDERS)
    table.append(pa.table({"id": [1, 2, 3], "amount": [1.5, 2.5, 3.5]}, schema=ORDERS))
    eventually(lake, "SELECT count(*) AS n, sum(amount) AS total FROM sales.orders", [{"n": 3, "total": 7.5}])

    table.overwrite(pa.table({"id": [10, 20], "amount": [100.0, 200.0]}, schema=ORDERS))
    eventually(lake, "SELECT id FROM sales.orders ORDER BY id", [{"id": 10}, {"id": 20}])

    table.delete("id = 10")
    eventually(lake, "SELECT id FROM sales.orders ORDER BY id", [{"id": 20}])

    with table.update_schema() as update:
        update.add_column("note", StringType())
    with_note = pa.schema([*ORDERS, pa.field("note", pa.string())])
    table.append(pa.table({"id": [30], "amount": [3.0], "note": ["new"]}, schema=with_note))
    eventually(
        lake, "SELECT id, note FROM sales.orders ORDER BY id", [{"id": 20, "note": None}, {"id": 30, "note": "new"}]
    )

    reloaded = catalog.load_table("sales.orders")
    snapshots = reloaded.snapshots()
    assert len(snapshots) >= 4  # append, overwrite, delete, append (an overwrite may take two)
    original = reloaded.scan(snapshot_id=snapshots[0].snapshot_id).to_arrow()
    assert sorted(original.column("id").to_pylist()) == [1, 2, 3]
    with lake.http() as http:
        listed = {d["name"]: d for d in http.get("/v1/catalog/datasets").json()["datasets"]}
    assert listed["sales.orders"]["rows"] == 2


def test_twenty_concurrent_appends_each_land_once(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("race")
    # Iceberg's default of 4 retries (100 ms apart, doubling) is for a few writers; 20 at once are the case its table
    # properties are for.
    catalog.create_table("race.hits", schema=ORDERS, properties=RETRIES)

    def append(i: int) -> None:
        own = lake.pyiceberg().load_table("race.hits")  # each engine its own client, as on separate boxes
        own.append(pa.table({"id": [i], "amount": [float(i)]}, schema=ORDERS))

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(append, range(20)))
    table = catalog.load_table("race.hits")
    assert len(table.snapshots()) == 20
    assert sorted(table.scan().to_arrow().column("id").to_pylist()) == list(range(20))
    eventually(lake, "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM race.hits", [{"n": 20, "ids": 20}])


def test_namespaces_nest_list_update_and_drop(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace(("org", "team"))
    with pytest.raises(NamespaceAlreadyExistsError):
        catalog.create_namespace(("org", "team"))
    assert ("org", "team") in catalog.list_namespaces(("org",))
    assert ("lakehouse",) in catalog.list_namespaces()
    summary = catalog.update_namespace_properties(("org", "team"), removals={"gone"}, updates={"a": "1"})
    assert (summary.updated, summary.removed, summary.missing) == (["a"], [], ["gone"])
    assert catalog.namespace_exists(("org", "team"))
    catalog.create_table(("org", "team", "t"), schema=ORDERS)
    with pytest.raises(NamespaceNotEmptyError):
        catalog.drop_namespace(("org", "team"))
    catalog.drop_table(("org", "team", "t"))
    catalog.drop_namespace(("org", "team"))
    assert not catalog.namespace_exists(("org", "team"))
    with pytest.raises(NoSuchNamespaceError):
        catalog.load_namespace_properties(("org", "team"))


def test_tables_rename_register_and_drop_with_and_without_purge(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("moves")
    table = catalog.create_table("moves.a", schema=ORDERS)
    with pytest.raises(TableAlreadyExistsError):
        catalog.create_table("moves.a", schema=ORDERS)
    table.append(pa.table({"id": [1], "amount": [1.0]}, schema=ORDERS))
    catalog.rename_table("moves.a", "moves.b")
    with pytest.raises(NoSuchTableError):
        catalog.load_table("moves.a")
    moved = catalog.load_table("moves.b")
    assert moved.scan().to_arrow().num_rows == 1

    catalog.drop_table("moves.b")  # no purge: the files stay, so the table can be registered again
    assert not catalog.table_exists("moves.b")
    registered = catalog.register_table("moves.c", moved.metadata_location)
    assert registered.scan().to_arrow().column("id").to_pylist() == [1]

    files = [p for p in (lake.root / "warehouse/moves/a").rglob("*") if p.is_file()]  # a rename moves no file
    assert files
    catalog.purge_table("moves.c")
    assert not catalog.table_exists("moves.c")
    assert not [p for p in files if p.exists()]


def test_a_staged_create_refs_and_tags(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("staged")
    with catalog.create_table_transaction("staged.t", schema=ORDERS, properties={"a": "1"}) as transaction:
        assert not catalog.table_exists("staged.t")  # staged: nothing stored until the commit
        transaction.set_properties(b="2")
    table = catalog.load_table("staged.t")
    assert {"a": "1", "b": "2"}.items() <= table.properties.items()

    table.append(pa.table({"id": [1], "amount": [1.0]}, schema=ORDERS))
    first = table.current_snapshot()
    assert first is not None
    table.manage_snapshots().create_tag(first.snapshot_id, "v1").commit()
    table.append(pa.table({"id": [2], "amount": [2.0]}, schema=ORDERS))
    table.append(pa.table({"id": [3], "amount": [3.0]}, schema=ORDERS))  # the second snapshot is now unreferenced
    with table.transaction() as transaction:
        transaction.remove_properties("b")
    with lake.http() as http:
        refs_only = http.get("/v1/iceberg/v1/namespaces/staged/tables/t?snapshots=refs").json()["metadata"]
        every = http.get("/v1/iceberg/v1/namespaces/staged/tables/t").json()["metadata"]
    assert set(refs_only["refs"]) == {"main", "v1"}
    assert len(every["snapshots"]) == 3
    referenced = {every["refs"]["main"]["snapshot-id"], first.snapshot_id}
    assert {s["snapshot-id"] for s in refs_only["snapshots"]} == referenced
    reloaded = catalog.load_table("staged.t")
    assert "b" not in reloaded.properties
    tag = reloaded.snapshot_by_name("v1")
    assert tag is not None
    assert reloaded.scan(snapshot_id=tag.snapshot_id).to_arrow().num_rows == 1


def test_a_partitioned_table_and_paged_listings(lake: Lake) -> None:
    catalog = lake.pyiceberg()
    catalog.create_namespace("parts")
    spec = PartitionSpec(PartitionField(source_id=1, field_id=1000, transform=IdentityTransform(), name="id"))
    schema = Schema(NestedField(1, "id", LongType()), NestedField(2, "amount", DoubleType()))
    table = catalog.create_table("parts.by_id", schema=schema, partition_spec=spec)
    table.append(pa.table({"id": [1, 1, 2], "amount": [1.0, 2.0, 3.0]}, schema=ORDERS))
    assert len(list(table.scan().plan_files())) == 2  # one file per partition
    eventually(
        lake,
        "SELECT id, sum(amount) AS total FROM parts.by_id GROUP BY id ORDER BY id",
        [{"id": 1, "total": 3.0}, {"id": 2, "total": 3.0}],
    )
    for name in ("p1", "p2", "p3"):
        catalog.create_table(f"parts.{name}", schema=ORDERS)
    with lake.http() as http:
        first = http.get("/v1/iceberg/v1/namespaces/parts/tables?pageSize=2").json()
        second = http.get(
            f"/v1/iceberg/v1/namespaces/parts/tables?pageSize=2&pageToken={first['next-page-token']}"
        ).json()
    names = [t["name"] for t in first["identifiers"] + second["identifiers"]]
    assert names == ["by_id", "p1", "p2", "p3"]
    assert "next-page-token" not in second
