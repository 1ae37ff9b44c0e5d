"""Tables through the REST catalog: load, create, commit, register, rename, drop, on the catalog's versions.

A commit is pyiceberg's own: each requirement validated against the current metadata, the updates applied by
`update_table_metadata`, the new metadata written beside the table; then the next catalog version is created with
If-None-Match: *, the same conditional PUT every catalog version is made with. Of two commits based on one version
exactly one lands; the other answers CommitFailedException and changes nothing, and the engine retries on the new
state (pyiceberg, Spark and Trino all do).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import anyio.to_thread
from pyiceberg.catalog import MetastoreCatalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER
from pyiceberg.table.update import TableRequirement, TableUpdate, update_table_metadata

from services.catalogd.catalog import Catalog, table_location
from services.catalogd.iceberg.errors import already_exists, bad_request, commit_failed, no_such_table
from services.catalogd.iceberg.fileio import key_of
from services.catalogd.iceberg.namespaces import LAKEHOUSE, Namespace
from services.catalogd.iceberg.recorder import metadata_file
from services.catalogd.iceberg.requests import CreateTable
from services.catalogd.schemas import Column, CommitMode, DataFile
from services.catalogd.stored import StoredVersion
from services.storaged.schemas import reserved_prefix
from shared.errors import LakehouseError


def columns_of(metadata: TableMetadata) -> list[Column]:
    arrow = schema_to_pyarrow(metadata.schema(), include_field_ids=False)
    return [Column(name=f.name, type=str(f.type), nullable=f.nullable) for f in arrow]


def _mode(base: TableMetadata | None, new: TableMetadata) -> CommitMode:
    if base is None:
        return "create"
    snapshot = new.current_snapshot()
    moved = snapshot is not None and snapshot.snapshot_id != base.current_snapshot_id
    appended = moved and snapshot is not None and snapshot.summary is not None
    return "append" if appended and snapshot.summary.operation == Operation.APPEND else "replace"  # type: ignore[union-attr]


def _apply(
    base: TableMetadata | None, location: str | None, requirements: list[TableRequirement], updates: list[TableUpdate]
) -> TableMetadata:
    for requirement in requirements:
        requirement.validate(base)
    return update_table_metadata(
        base_metadata=base if base is not None else MetastoreCatalog._empty_table_metadata(),
        updates=tuple(updates),
        enforce_validation=base is None,
        metadata_location=location,
    )


class Tables:
    def __init__(self, catalog: Catalog, warehouse: str) -> None:
        self.catalog = catalog
        self.store = catalog.recorder.store
        self.warehouse = warehouse.rstrip("/")

    def location_for(self, namespace: Namespace, table: str) -> str:
        if namespace == (LAKEHOUSE,):
            return table_location(table)
        return f"{self.warehouse}/{'/'.join(namespace)}/{table}"

    async def load(self, name: str) -> tuple[str, TableMetadata]:
        current = await self.catalog.current(name)
        if current is None:
            raise no_such_table(name)
        metadata, location = await self.catalog.recorder.table(current, lambda n: self.catalog.version(name, n))
        return location, metadata

    async def create(self, namespace: Namespace, name: str, request: CreateTable) -> tuple[str | None, TableMetadata]:
        """(metadata location, metadata); a staged create is not stored (location None) until its commit."""
        if await self.catalog.current(name) is not None:
            raise already_exists(f"Table {name}")
        location = (request.location or self.location_for(namespace, request.name)).rstrip("/")
        _check_location(location)
        try:
            metadata = new_table_metadata(
                request.table_schema,
                request.partition_spec or UNPARTITIONED_PARTITION_SPEC,
                request.write_order or UNSORTED_SORT_ORDER,
                location,
                request.properties,
                table_uuid=uuid.uuid4(),
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if request.stage_create:
            return None, metadata
        return await self._publish(name, None, None, metadata)

    async def commit(
        self, name: str, requirements: list[TableRequirement], updates: list[TableUpdate]
    ) -> tuple[str, TableMetadata]:
        current = await self.catalog.current(name)
        base: TableMetadata | None = None
        base_location: str | None = None
        if current is not None:
            base, base_location = await self.catalog.recorder.table(current, lambda n: self.catalog.version(name, n))
        try:
            new = await anyio.to_thread.run_sync(_apply, base, base_location, requirements, updates)
        except CommitFailedException as exc:
            if current is None and not any(r.type == "assert-create" for r in requirements):
                raise no_such_table(name) from None
            raise commit_failed(str(exc)) from None
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if current is None and not any(r.type == "assert-create" for r in requirements):
            raise no_such_table(name)
        _check_location(new.location)
        return await self._publish(name, current, base, new)

    async def register(self, name: str, metadata_location: str) -> tuple[str, TableMetadata]:
        if await self.catalog.current(name) is not None:
            raise already_exists(f"Table {name}")
        _check_location(metadata_location)
        try:
            metadata = await self.store.metadata(metadata_location)
        except LakehouseError as exc:
            raise bad_request(exc.message) from None
        files = await self._files(metadata)
        version = self._version(name, None, None, metadata, metadata_location, files)
        if not await self.catalog.publish(version):
            raise already_exists(f"Table {name}")
        return metadata_location, metadata

    async def _files(self, metadata: TableMetadata) -> list[DataFile]:
        try:
            live = await self.store.live_files(metadata)
        except LakehouseError as exc:
            if exc.code != "invalid_request":
                raise
            raise bad_request(exc.message) from None
        for file in live:
            if reserved_prefix(file.key) is not None:
                raise bad_request(f"data file s3://{file.key} is inside a reserved prefix of the lakehouse")
        return [DataFile(key=f.key, rows=f.rows, bytes=f.bytes) for f in live]

    def _version(
        self,
        name: str,
        current: StoredVersion | None,
        base: TableMetadata | None,
        new: TableMetadata,
        location: str,
        files: list[DataFile],
    ) -> StoredVersion:
        now = datetime.now(UTC)
        return StoredVersion(
            name=name,
            version=(current.version if current else 0) + 1,
            mode=_mode(base, new),
            columns=columns_of(new),
            files=files,
            rows=sum(f.rows for f in files),
            bytes=sum(f.bytes for f in files),
            created_at=current.created_at if current else now,
            updated_at=now,
            metadata_location=location,
            snapshot_id=new.current_snapshot_id,
        )

    async def _publish(
        self, name: str, current: StoredVersion | None, base: TableMetadata | None, new: TableMetadata
    ) -> tuple[str, TableMetadata]:
        files = await self._files(new)
        location = metadata_file(new.location, (current.version if current else 0) + 1)
        await self.store.store({location: new.model_dump_json().encode()})
        if not await self.catalog.publish(self._version(name, current, base, new, location, files)):
            await self.store.remove([location])
            if current is None:
                raise already_exists(f"Table {name}")
            raise commit_failed(f"table {name} changed since version {current.version}: refresh and retry")
        self.store.remember(location, new)
        return location, new


def _check_location(location: str) -> None:
    try:
        key = key_of(location + "/x")
    except ValueError as exc:
        raise bad_request(f"location: {exc}") from None
    if reserved_prefix(key) is not None:
        raise bad_request(f"location {location} is inside a reserved prefix of the lakehouse")
