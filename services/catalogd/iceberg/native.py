"""The lakehouse's own commits as Iceberg snapshots (blocking: run off the event loop).

A catalog version made by ingestd or `POST /v1/catalog/.../commits` becomes one snapshot whose id is the version's
number: its data files, with the column statistics their Parquet footers hold, in one new Avro manifest; an append
keeps the previous snapshot's manifests beside it, a create or replace lists only its own. The files carry no
Iceberg field ids, so the table says how names map to ids (`schema.name-mapping.default`), as pyiceberg's add_files
does; a column keeps its id across versions while its name and type stay the same.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.avro.codecs import AvroCompressionCodec
from pyiceberg.catalog import Catalog as PyicebergCatalog
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    schema_to_pyarrow,
)
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    write_manifest,
    write_manifest_list,
)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.name_mapping import create_mapping_from_schema
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import (
    AddSchemaUpdate,
    AddSnapshotUpdate,
    SetCurrentSchemaUpdate,
    SetPropertiesUpdate,
    SetSnapshotRefUpdate,
    TableUpdate,
    update_table_metadata,
)
from pyiceberg.typedef import Record, TableVersion

from services.catalogd.iceberg.fileio import MemoryFileIO, uri_of

NAME_MAPPING = "schema.name-mapping.default"
FORMAT_VERSION: TableVersion = 2
AVRO_CODEC: AvroCompressionCodec = "deflate"


@dataclass(frozen=True, slots=True)
class NativeFile:
    key: str
    rows: int
    bytes: int
    footer: pq.FileMetaData


@dataclass(frozen=True, slots=True)
class NativeCommit:
    """One catalog version to record: what it adds, and whether it keeps what was there (append) or not."""

    version: int
    append: bool
    files: Sequence[NativeFile]  # an append's new files; every file of a create or replace
    timestamp_ms: int
    table_uuid: uuid.UUID


def _same_type(a: Schema, b: Schema) -> bool:
    return bool(schema_to_pyarrow(a, include_field_ids=False).equals(schema_to_pyarrow(b, include_field_ids=False)))


def _evolved(arrow: pa.Schema, current: Schema, last_column_id: int, schema_id: int) -> Schema | None:
    """`arrow` as the table's next schema: None when it is the current one; a column whose name and type stay keeps
    its field id, every other field gets a new one."""
    converted = PyicebergCatalog._convert_schema_if_needed(arrow)
    counter = itertools.count(last_column_id + 1)
    fresh = assign_fresh_schema_ids(converted, next_id=lambda: next(counter))
    if _same_type(fresh, current) and [f.name for f in fresh.fields] == [f.name for f in current.fields]:
        return None
    old = {f.name: f for f in current.fields}
    fields = []
    for field in fresh.fields:
        kept = old.get(field.name)
        same = kept is not None and _same_type(Schema(kept), Schema(field)) and kept.required == field.required
        fields.append(kept if same and kept is not None else field)
    return Schema(*fields, schema_id=schema_id)


def _data_file(file: NativeFile, metadata: TableMetadata) -> DataFile:
    schema = metadata.schema()
    statistics = data_file_statistics_from_parquet_metadata(
        file.footer, compute_statistics_plan(schema, metadata.properties), parquet_path_to_id_mapping(schema)
    )
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=uri_of(file.key),
        file_format=FileFormat.PARQUET,
        partition=Record(),
        file_size_in_bytes=file.bytes,
        sort_order_id=None,
        spec_id=metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **statistics.to_serialized_dict(),
    )


def _arrow_schema(commit: NativeCommit, base: TableMetadata | None) -> pa.Schema:
    if commit.files:
        return commit.files[0].footer.schema.to_arrow_schema()
    if base is not None:
        return schema_to_pyarrow(base.schema(), include_field_ids=False)
    return pa.schema([])


def record(
    base: TableMetadata | None,
    base_location: str | None,
    kept: Sequence[ManifestFile],
    commit: NativeCommit,
    location: str,
    io: MemoryFileIO,
) -> TableMetadata:
    """The table after `commit`; the manifest and manifest list it needs land in `io.written`.

    `kept`: the manifests of the base's current snapshot (an append keeps them)."""
    arrow = _arrow_schema(commit, base)
    updates: list[TableUpdate] = []
    if base is None:
        schema = PyicebergCatalog._convert_schema_if_needed(arrow)
        base = new_table_metadata(
            schema,
            UNPARTITIONED_PARTITION_SPEC,
            UNSORTED_SORT_ORDER,
            location,
            properties={"format-version": str(FORMAT_VERSION)},
            table_uuid=commit.table_uuid,
        )
        updates.append(
            SetPropertiesUpdate(updates={NAME_MAPPING: create_mapping_from_schema(base.schema()).model_dump_json()})
        )
    else:
        if not base.spec().is_unpartitioned():
            raise ValueError(
                "the table is partitioned: write it through an Iceberg engine, not the lakehouse's commits"
            )
        next_id = max(s.schema_id for s in base.schemas) + 1
        evolved = _evolved(arrow, base.schema(), base.last_column_id, next_id)
        if evolved is not None:
            updates += [
                AddSchemaUpdate(schema_=evolved),
                SetCurrentSchemaUpdate(schema_id=-1),
                SetPropertiesUpdate(updates={NAME_MAPPING: create_mapping_from_schema(evolved).model_dump_json()}),
            ]
    staged = update_table_metadata(base, tuple(updates), metadata_location=base_location) if updates else base

    snapshot_id = commit.version
    parent = staged.current_snapshot_id
    sequence = staged.next_sequence_number()
    data_files = [_data_file(f, staged) for f in commit.files]
    manifests = list(kept) if commit.append else []
    if data_files:
        path = f"{staged.location}/metadata/{uuid.uuid4()}-m0.avro"
        with write_manifest(
            format_version=FORMAT_VERSION,
            spec=staged.spec(),
            schema=staged.schema(),
            output_file=io.new_output(path),
            snapshot_id=snapshot_id,
            avro_compression=AVRO_CODEC,
        ) as writer:
            for data_file in data_files:
                writer.add(
                    ManifestEntry.from_args(
                        status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id, data_file=data_file
                    )
                )
        manifests.append(writer.to_manifest_file())
    list_path = f"{staged.location}/metadata/snap-{snapshot_id}-0-{uuid.uuid4()}.avro"
    with write_manifest_list(
        format_version=FORMAT_VERSION,
        output_file=io.new_output(list_path),
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent,
        sequence_number=sequence,
        avro_compression=AVRO_CODEC,
    ) as list_writer:
        list_writer.add_manifests(manifests)
    previous = staged.snapshot_by_id(parent) if parent is not None else None
    total_rows = sum(f.rows for f in commit.files)
    total_files = len(commit.files)
    if commit.append and previous is not None and previous.summary is not None:
        total_rows += int(previous.summary.get("total-records", "0"))
        total_files += int(previous.summary.get("total-data-files", "0"))
    summary = Summary(
        operation=Operation.APPEND if commit.append or base_location is None else Operation.OVERWRITE,
        **{
            "added-data-files": str(len(commit.files)),
            "added-records": str(sum(f.rows for f in commit.files)),
            "total-data-files": str(total_files),
            "total-records": str(total_rows),
            "lakehouse.version": str(commit.version),
        },
    )
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent,
        sequence_number=sequence,
        timestamp_ms=commit.timestamp_ms,
        manifest_list=list_path,
        summary=summary,
        schema_id=staged.current_schema_id,
    )
    ref = SetSnapshotRefUpdate(
        ref_name=MAIN_BRANCH,
        type=SnapshotRefType.BRANCH,
        snapshot_id=snapshot_id,
        max_ref_age_ms=None,
        max_snapshot_age_ms=None,
        min_snapshots_to_keep=None,
    )
    return update_table_metadata(staged, (AddSnapshotUpdate(snapshot=snapshot), ref), metadata_location=base_location)
