"""The Iceberg door: an engine's commit may name only data files in the lakehouse's own, public storage. A snapshot
listing a catalog manifest, vectord's state or a server path is refused (400), and SQL never reads it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestEntry,
    ManifestEntryStatus,
    write_manifest,
    write_manifest_list,
)
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.typedef import Record

from tests.support.lake import Lake, running_lake

SCHEMA = pa.schema([pa.field("id", pa.int64())])
FORBIDDEN = [
    "s3://_catalog/victim/v0000000001.json",
    "s3://vectord/manifest.json",
    "s3://_s3/buckets/x",
    "file:///etc/passwd",
    "/etc/passwd",
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with running_lake(tmp_path_factory.mktemp("lake")) as running:
        yield running


def snapshot_naming(table: Table, path: str, snapshot_id: int) -> Snapshot:
    """A snapshot whose one data file is `path`, written with pyiceberg's own manifest writers through the S3 API."""
    data_file = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=1,
        file_size_in_bytes=100,
    )
    manifest_path = f"{table.location()}/metadata/forged-{snapshot_id}-m0.avro"
    with write_manifest(
        format_version=2,
        spec=table.spec(),
        schema=table.schema(),
        output_file=table.io.new_output(manifest_path),
        snapshot_id=snapshot_id,
        avro_compression="deflate",
    ) as writer:
        writer.add(
            ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id, data_file=data_file)
        )
    list_path = f"{table.location()}/metadata/snap-{snapshot_id}-forged.avro"
    parent = table.current_snapshot()
    with write_manifest_list(
        format_version=2,
        output_file=table.io.new_output(list_path),
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id if parent else None,
        sequence_number=table.metadata.next_sequence_number(),
        avro_compression="deflate",
    ) as listed:
        listed.add_manifests([writer.to_manifest_file()])
    return Snapshot(
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id if parent else None,
        sequence_number=table.metadata.next_sequence_number(),
        timestamp_ms=int(time.time() * 1000),
        manifest_list=list_path,
        summary=Summary(operation=Operation.APPEND),
        schema_id=table.schema().schema_id,
    )


@pytest.mark.parametrize("path", FORBIDDEN)
def test_a_snapshot_naming_a_file_outside_the_public_store_is_refused(lake: Lake, path: str) -> None:
    catalog = lake.pyiceberg()
    if not catalog.namespace_exists("attack"):
        catalog.create_namespace("attack")
        catalog.create_table("attack.t", schema=SCHEMA).append(pa.table({"id": [1]}, schema=SCHEMA))
    table = catalog.load_table("attack.t")
    snapshot_id = 1000 + FORBIDDEN.index(path)
    forged = snapshot_naming(table, path, snapshot_id)
    body = {
        "requirements": [],
        "updates": [
            {"action": "add-snapshot", "snapshot": forged.model_dump(by_alias=True, exclude_none=True)},
            {"action": "set-snapshot-ref", "ref-name": "main", "type": "branch", "snapshot-id": snapshot_id},
        ],
    }
    with lake.http() as http:
        response = http.post("/v1/iceberg/v1/namespaces/attack/tables/t", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "BadRequestException"
    assert catalog.load_table("attack.t").metadata_location == table.metadata_location
    assert lake.sql("SELECT id FROM attack.t") == [{"id": 1}]


def test_a_table_cannot_live_in_a_reserved_prefix(lake: Lake) -> None:
    with lake.http() as http:
        created = http.post(
            "/v1/iceberg/v1/namespaces/lakehouse/tables",
            json={"name": "sneaky", "location": "s3://_catalog/sneaky", "schema": {"type": "struct", "fields": []}},
        )
    assert created.status_code == 400, created.text
    assert not (Path(lake.root) / "_catalog/sneaky").exists()
