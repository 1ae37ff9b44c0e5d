"""The spend ledger, shipped: sealed spool segments become Parquet files of the dataset `spend` (the Iceberg table
`lakehouse.spend`), and its small files are merged into one now and then so it stays compact.

Every `ledger_ship_secs` the current segment is sealed; each sealed segment is written as one Parquet file named
after it (PUT to storaged) and appended to `spend` (a commit to catalogd), then deleted. The file's name is the
segment's, so a segment shipped before a crash but not yet deleted is found in the manifest and not appended
twice. Past `ledger_compact_files` small files, they are read back, merged and committed as one (a `replace` on
the version they were read at; a concurrent commit wins and the merge is tried at the next round).
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from services.catalogd.client import CatalogdClient
from services.catalogd.schemas import Column, DataFile, Manifest
from services.chatd.ledger import SPEND_SCHEMA, Spool, settle, table_of
from services.storaged.client import StoragedClient
from services.storaged.schemas import data_file_key
from shared.upstream.client import RemoteError

SPEND_DATASET = "spend"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
COMPACTED_BYTES = 64 << 20  # a file this big is left as it is by a merge
COLUMNS = [Column(name=f.name, type=str(f.type), nullable=f.nullable) for f in SPEND_SCHEMA]


def parquet_of(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class Shipper:
    def __init__(self, spool: Spool, storage: StoragedClient, catalog: CatalogdClient, *, compact_files: int) -> None:
        self.spool = spool
        self.storage = storage
        self.catalog = catalog
        self.compact_files = compact_files
        self.log = structlog.get_logger("chatd")

    async def run(self, every_secs: float) -> None:
        """Ship forever; storaged or catalogd not answering keeps the segments spooled (and is logged)."""
        while True:
            await asyncio.sleep(every_secs)
            try:
                await self.ship()
            except (RemoteError, OSError, ValueError) as exc:
                self.log.warning("spend ledger not shipped; kept in the spool", error=str(exc)[:300])

    async def ship(self) -> int:
        """Seal the current segment and ship every sealed one; the records shipped."""
        old = self.spool.seal()
        if old is not None:
            await asyncio.to_thread(settle, old)
        shipped = 0
        sealed = self.spool.sealed()
        manifest = await self._manifest() if sealed else None
        for segment in sealed:  # each commit's answer is the manifest the next segment is checked against
            rows, manifest = await self._ship_one(segment, manifest)
            shipped += rows
        if shipped:
            await self.compact()
        return shipped

    async def _manifest(self) -> Manifest | None:
        try:
            return await self.catalog.get_manifest(SPEND_DATASET)
        except RemoteError as exc:
            if exc.code == "not_found":
                return None
            raise

    async def _ship_one(self, segment: Path, manifest: Manifest | None) -> tuple[int, Manifest | None]:
        """Ship `segment` against the dataset's current `manifest`: (rows, the manifest after it)."""
        table = await asyncio.to_thread(lambda: table_of(segment.read_bytes()))
        key = data_file_key(SPEND_DATASET, segment.stem, 0)
        if table.num_rows and not (manifest and any(f.key == key for f in manifest.files)):
            body = await asyncio.to_thread(parquet_of, table)
            await self.storage.put(key, body, content_type=PARQUET_MEDIA_TYPE, size=len(body))
            files = [DataFile(key=key, rows=table.num_rows, bytes=len(body))]
            manifest = await self._commit(files, exists=manifest is not None)
        await asyncio.to_thread(segment.unlink)
        rows: int = table.num_rows
        return rows, manifest

    async def _commit(self, files: list[DataFile], *, exists: bool) -> Manifest:
        if not exists:
            try:
                return await self.catalog.commit(SPEND_DATASET, "create", schema=COLUMNS, files=files)
            except RemoteError as exc:
                if exc.code != "already_exists":
                    raise
        return await self.catalog.commit(SPEND_DATASET, "append", schema=COLUMNS, files=files)

    async def compact(self) -> bool:
        """Merge the dataset's small files into one when there are more than `compact_files`; True if merged."""
        manifest = await self._manifest()
        if manifest is None:
            return False
        small = [f for f in manifest.files if f.bytes < COMPACTED_BYTES]
        if len(small) <= self.compact_files:
            return False
        parts = [await self.storage.get_bytes(f.key) for f in small]
        body = await asyncio.to_thread(
            lambda: parquet_of(pa.concat_tables(pq.read_table(io.BytesIO(p)) for p in parts))
        )
        key = data_file_key(SPEND_DATASET, f"compacted-v{manifest.version + 1:08d}", 0)
        await self.storage.put(key, body, content_type=PARQUET_MEDIA_TYPE, size=len(body))
        kept = [f for f in manifest.files if f.bytes >= COMPACTED_BYTES]
        merged = DataFile(key=key, rows=sum(f.rows for f in small), bytes=len(body))
        try:
            await self.catalog.commit(
                SPEND_DATASET, "replace", schema=COLUMNS, files=[*kept, merged], expected_version=manifest.version
            )
        except RemoteError as exc:
            await self.storage.delete(key)  # the merge lost to another commit: nothing refers to its file
            if exc.code != "version_conflict":
                raise
            return False
        self.log.info("spend ledger compacted", files=len(small), rows=merged.rows)
        return True
