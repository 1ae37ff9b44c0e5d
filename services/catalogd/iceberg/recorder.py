"""What makes every catalog version an Iceberg table version: the lakehouse's own commits recorded as snapshots, and
the metadata of versions stored before the catalog spoke Iceberg, derived once when first asked for.

A version without `metadata_location` (an older catalog wrote it) gets its metadata at a fixed place,
`<location>/metadata/legacy-<version>.metadata.json`, derived from the versions before it: derived once by whoever
asks first (created with If-None-Match: *), read by everyone after. Nothing is rewritten, so the upgrade is
idempotent and a catalog of either age reads the same.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence

import anyio.to_thread
from pyiceberg.table.metadata import TableMetadata

from services.catalogd.iceberg import native
from services.catalogd.iceberg.fileio import MemoryFileIO
from services.catalogd.iceberg.store import IcebergStore, storage_failure
from services.catalogd.schemas import DataFile
from services.catalogd.stored import StoredVersion
from services.storaged.client import StorageError
from shared.errors import LakehouseError

LoadVersion = Callable[[int], Awaitable[StoredVersion]]


def legacy_location(location: str, version: int) -> str:
    return f"{location}/metadata/legacy-{version:05d}.metadata.json"


def metadata_file(location: str, version: int) -> str:
    return f"{location}/metadata/{version:05d}-{uuid.uuid4()}.metadata.json"


class Recorder:
    def __init__(self, store: IcebergStore, location_of: Callable[[str], str]) -> None:
        self.store = store
        self.location_of = location_of  # where a new table's files go, by dataset name

    async def table(self, current: StoredVersion, load: LoadVersion) -> tuple[TableMetadata, str]:
        """The Iceberg metadata of `current` and its location."""
        if current.metadata_location is not None:
            return await self.store.metadata(current.metadata_location), current.metadata_location
        location = legacy_location(self.location_of(current.name), current.version)
        try:
            return await self.store.metadata(location), location
        except LakehouseError as exc:
            if exc.code != "invalid_request":
                raise
        base: tuple[TableMetadata, str] | None = None
        previous: StoredVersion | None = None
        if current.version > 1:
            previous = await load(current.version - 1)
            base = await self.table(previous, load)
        metadata, written = await self._build(current, previous, base, _added(current, previous))
        await self.store.store(written)
        try:
            await self.store.storage.put(
                location.removeprefix("s3://"), metadata.model_dump_json().encode(), if_none_match=True
            )
        except StorageError as failed:
            await self.store.remove(list(written))
            if failed.code != "precondition_failed":
                raise storage_failure(failed) from None
            return await self.store.metadata(location), location  # derived by another at the same time
        self.store.remember(location, metadata)
        return metadata, location

    async def record(
        self, new: StoredVersion, current: StoredVersion | None, added: Sequence[DataFile], load: LoadVersion
    ) -> tuple[StoredVersion, list[str]]:
        """`new` with its metadata written; also every file written, for the caller to remove if `new` loses."""
        base = await self.table(current, load) if current is not None else None
        metadata, written = await self._build(new, current, base, added)
        location = metadata_file(metadata.location, new.version)
        written[location] = metadata.model_dump_json().encode()
        await self.store.store(written)
        self.store.remember(location, metadata)
        recorded = new.model_copy(update={"metadata_location": location, "snapshot_id": metadata.current_snapshot_id})
        return recorded, list(written)

    async def _build(
        self,
        new: StoredVersion,
        current: StoredVersion | None,
        base: tuple[TableMetadata, str] | None,
        added: Sequence[DataFile],
    ) -> tuple[TableMetadata, dict[str, bytes]]:
        append = new.mode == "append" and base is not None
        described = added if append else new.files
        footers = await asyncio.gather(*(self.store.footer(f.key, f.bytes) for f in described))
        kept = await self.store.manifests(base[0]) if append and base is not None else []
        commit = native.NativeCommit(
            version=new.version,
            append=append,
            files=[
                native.NativeFile(f.key, f.rows, f.bytes, footer) for f, footer in zip(described, footers, strict=True)
            ],
            timestamp_ms=int(new.updated_at.timestamp() * 1000),
            table_uuid=uuid.uuid5(uuid.NAMESPACE_URL, f"lakehouse:{new.name}:{new.created_at.isoformat()}"),
        )
        io = MemoryFileIO()
        location = base[0].location if base is not None else self.location_of(new.name)
        try:
            metadata = await anyio.to_thread.run_sync(
                native.record, base[0] if base else None, base[1] if base else None, kept, commit, location, io
            )
        except ValueError as exc:
            raise LakehouseError("invalid_request", f"dataset {new.name!r}: {exc}") from None
        return metadata, io.written


def _added(version: StoredVersion, previous: StoredVersion | None) -> list[DataFile]:
    if version.mode != "append" or previous is None:
        return list(version.files)
    before = {f.key for f in previous.files}
    return [f for f in version.files if f.key not in before]
