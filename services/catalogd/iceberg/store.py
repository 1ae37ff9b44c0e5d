"""Iceberg files in storaged: table metadata (parsed once per location: a metadata file never changes), manifest
lists and manifests, Parquet footers, and storing what pyiceberg wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import pyarrow.parquet as pq
from pyiceberg.manifest import DataFile, DataFileContent, ManifestContent, ManifestFile, read_manifest_list
from pyiceberg.table.metadata import TableMetadata, TableMetadataUtil

from services.catalogd.iceberg.fileio import MemoryFileIO, TailFile, key_of
from services.storaged.client import StoragedClient, StorageError
from shared.errors import LakehouseError

FOOTER_GUESS = 64 << 10  # one ranged GET holds the footer of all but very wide files
PARQUET_TRAILER = 8  # footer length (4 bytes, little-endian) and "PAR1"
CACHE_ENTRIES = 1024
IN_FLIGHT = 16


def storage_failure(exc: StorageError) -> LakehouseError:
    unavailable = exc.code in ("upstream_unavailable", "upstream_timeout")
    return LakehouseError("upstream_unavailable" if unavailable else "upstream_error", f"storaged: {exc.message}")


@dataclass(frozen=True, slots=True)
class LiveFile:
    """A data file of a snapshot, as the simple catalog view lists it."""

    key: str
    rows: int
    bytes: int


def _keep(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """An LRU of immutable things: metadata, manifests and footers never change once written."""
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > CACHE_ENTRIES:
        cache.popitem(last=False)


def _footer(size: int, tail: bytes) -> pq.FileMetaData:
    return pq.read_metadata(TailFile(size, tail))


def _parse_metadata(data: bytes) -> TableMetadata:
    return TableMetadataUtil.parse_raw(data.decode())


def _manifest_list(location: str, data: bytes) -> list[ManifestFile]:
    return list(read_manifest_list(MemoryFileIO({location: data}).new_input(location)))


def _entries(manifest: ManifestFile, data: bytes) -> list[DataFile]:
    io = MemoryFileIO({manifest.manifest_path: data})
    return [entry.data_file for entry in manifest.fetch_manifest_entry(io, discard_deleted=True)]


class IcebergStore:
    def __init__(self, storage: StoragedClient) -> None:
        self.storage = storage
        self._metadata: OrderedDict[str, TableMetadata] = OrderedDict()
        self._manifests: OrderedDict[str, list[DataFile]] = OrderedDict()
        self._lists: OrderedDict[str, list[ManifestFile]] = OrderedDict()
        self._footers: OrderedDict[tuple[str, int], pq.FileMetaData] = OrderedDict()
        self._gate = asyncio.Semaphore(IN_FLIGHT)

    async def read(self, uri: str, *, range: str | None = None) -> bytes:
        try:
            key = key_of(uri)
        except ValueError as exc:
            raise LakehouseError("invalid_request", str(exc)) from None
        try:
            async with self._gate:
                return await self.storage.get_bytes(key, range=range)
        except StorageError as exc:
            if exc.code == "not_found":
                raise LakehouseError("invalid_request", f"{uri} is not in storaged") from None
            raise storage_failure(exc) from None

    async def store(self, files: Mapping[str, bytes]) -> None:
        """Each file created once (If-None-Match: *): names carry a fresh UUID, so a clash is a bug, not a race."""

        async def put(uri: str, data: bytes) -> None:
            async with self._gate:
                await self.storage.put(key_of(uri), data, if_none_match=True)

        try:
            await asyncio.gather(*(put(uri, data) for uri, data in files.items()))
        except StorageError as exc:
            raise storage_failure(exc) from None

    async def remove(self, uris: list[str]) -> None:
        """Best effort: what a lost commit wrote is garbage nobody points to."""

        async def delete(uri: str) -> None:
            async with self._gate:
                with contextlib.suppress(StorageError, ValueError):
                    await self.storage.delete(key_of(uri))

        await asyncio.gather(*(delete(uri) for uri in uris))

    async def metadata(self, location: str) -> TableMetadata:
        cached = self._metadata.get(location)
        if cached is not None:
            self._metadata.move_to_end(location)
            return cached
        data = await self.read(location)
        try:
            parsed = await anyio.to_thread.run_sync(_parse_metadata, data)
        except ValueError as exc:
            raise LakehouseError("corrupt_manifest", f"{location} is not Iceberg table metadata: {exc}"[:500]) from None
        self.remember(location, parsed)
        return parsed

    def remember(self, location: str, metadata: TableMetadata) -> None:
        _keep(self._metadata, location, metadata)

    async def footer(self, key: str, size: int) -> pq.FileMetaData:
        """The Parquet footer of a data file (kept: a commit that loses a race retries with the same files)."""
        cached = self._footers.get((key, size))
        if cached is None:
            cached = await self._read_footer(key, size)
            _keep(self._footers, (key, size), cached)
        return cached

    async def _read_footer(self, key: str, size: int) -> pq.FileMetaData:
        tail = await self.read("s3://" + key, range=f"bytes=-{FOOTER_GUESS}")
        if len(tail) < PARQUET_TRAILER or tail[-4:] != b"PAR1":
            raise LakehouseError("invalid_request", f"file {key!r} is not a Parquet file")
        needed = int.from_bytes(tail[-8:-4], "little") + PARQUET_TRAILER
        if needed > len(tail) and size > len(tail):
            tail = await self.read("s3://" + key, range=f"bytes=-{needed}")
        try:
            return await anyio.to_thread.run_sync(_footer, size, tail)
        except (OSError, ValueError) as exc:
            raise LakehouseError("invalid_request", f"file {key!r}: unreadable Parquet footer ({exc})") from None

    async def manifests(self, metadata: TableMetadata) -> list[ManifestFile]:
        """The manifests of the current snapshot; [] when there is none."""
        snapshot = metadata.current_snapshot()
        if snapshot is None:
            return []
        cached = self._lists.get(snapshot.manifest_list)
        if cached is None:
            data = await self.read(snapshot.manifest_list)
            cached = await anyio.to_thread.run_sync(_manifest_list, snapshot.manifest_list, data)
            _keep(self._lists, snapshot.manifest_list, cached)
        return cached

    async def live_files(self, metadata: TableMetadata) -> list[LiveFile]:
        """Every data file of the current snapshot. A snapshot with delete files is refused: the SQL side reads
        Parquet files whole and would show deleted rows (copy-on-write deletes, pyiceberg's, are fine)."""
        manifests = await self.manifests(metadata)
        if any(m.content == ManifestContent.DELETES for m in manifests):
            raise LakehouseError(
                "invalid_request",
                "the snapshot has delete files (merge-on-read): this catalog takes copy-on-write deletes only "
                "(set write.delete.mode, write.update.mode and write.merge.mode to copy-on-write)",
            )

        async def entries(manifest: ManifestFile) -> list[DataFile]:
            cached = self._manifests.get(manifest.manifest_path)
            if cached is not None:
                return cached
            data = await self.read(manifest.manifest_path)
            found = await anyio.to_thread.run_sync(_entries, manifest, data)
            _keep(self._manifests, manifest.manifest_path, found)
            return found

        files: list[LiveFile] = []
        for listed in await asyncio.gather(*(entries(m) for m in manifests)):
            for data_file in listed:
                if data_file.content != DataFileContent.DATA:
                    raise LakehouseError("invalid_request", "the snapshot has delete files (merge-on-read)")
                try:
                    key = key_of(data_file.file_path)
                except ValueError as exc:
                    raise LakehouseError("invalid_request", f"data file: {exc}") from None
                files.append(LiveFile(key, data_file.record_count, data_file.file_size_in_bytes))
        return files
