"""One ingest end to end: receive into the spool while a thread converts, upload each Parquet part as it is finished,
commit the version to catalogd; on any failure delete every object already uploaded (no orphans).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import structlog

from services.catalogd.client import CatalogdClient, CatalogError
from services.catalogd.schemas import Column, DataFile
from services.ingestd.convert import Converted, Layout, convert, schema_fields
from services.ingestd.options import CsvOptions, Format, IngestOptions
from services.ingestd.parquet_writer import Part
from services.ingestd.spool import Spool, SpoolAborted
from services.storaged.client import StoragedClient, StorageError
from services.storaged.schemas import data_file_key
from shared.errors import LakehouseError

SPOOL_WRITE_BYTES = 1 << 20
UPLOAD_CHUNK = 1 << 20
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
UPLOAD_BACKLOG = 1  # finished parts queued or uploading at once; the parser holds the next one until a slot frees


@dataclass
class Source:
    """The upload: its byte stream, and how to find its format once the stream has been opened."""

    chunks: AsyncIterator[bytes]
    decide_format: Callable[[], Format]
    csv: Callable[[], CsvOptions]  # the CSV options, once the file's name is known (a .tsv is tab-separated)
    opened: Callable[[], Awaitable[None]] | None = None


@dataclass
class Ingest:
    dataset: str
    options: IngestOptions
    layout: Layout
    temp_dir: str | None
    storage: StoragedClient
    catalog: CatalogdClient
    uploaded: list[DataFile] = field(default_factory=list)
    bytes_in: int = 0

    def key(self, run: str, part: Part) -> str:
        return data_file_key(self.dataset, run, part.index)

    async def _receive(self, chunks: AsyncIterator[bytes], spool: Spool) -> None:
        pending: list[bytes] = []
        size = 0
        async for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            self.bytes_in += len(chunk)
            if size >= SPOOL_WRITE_BYTES:
                await anyio.to_thread.run_sync(spool.append, b"".join(pending))
                pending, size = [], 0
        if pending:
            await anyio.to_thread.run_sync(spool.append, b"".join(pending))
        spool.finish()

    async def _upload(self, run: str, parts: asyncio.Queue[Part | None], slots: threading.Semaphore) -> None:
        while (part := await parts.get()) is not None:
            try:
                key = self.key(run, part)
                # Recorded before the PUT: if it fails half way, the cleanup deletes whatever may have landed.
                self.uploaded.append(DataFile(key=key, rows=part.rows, bytes=part.bytes))
                # aclosing: a PUT that fails or is cancelled half way still closes the part's file at once.
                async with aclosing(_file_chunks(part)) as chunks:
                    await self.storage.put(key, chunks, content_type=PARQUET_MEDIA_TYPE, size=part.bytes)
            finally:
                part.path.unlink(missing_ok=True)
                slots.release()

    async def run(self, source: Source) -> dict[str, Any]:
        started = time.perf_counter()
        run = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:12]
        spool = Spool(self.temp_dir)
        parts: asyncio.Queue[Part | None] = asyncio.Queue()
        slots = threading.Semaphore(UPLOAD_BACKLOG)
        loop = asyncio.get_running_loop()
        converted: Converted | None = None

        def on_part(part: Part) -> None:
            # Backpressure: the parser waits while UPLOAD_BACKLOG parts are queued, so temp disk stays bounded.
            while not slots.acquire(timeout=0.1):
                if spool.aborted:
                    part.path.unlink(missing_ok=True)
                    raise SpoolAborted("the ingest was aborted")
            loop.call_soon_threadsafe(parts.put_nowait, part)

        async def conversion(fmt: Format, csv: CsvOptions) -> None:
            nonlocal converted
            try:
                # Not abandoned on cancel: the thread reads the spool's fd, so it must be done before the fd closes;
                # _aborting wakes it (SpoolAborted) as soon as any sibling fails.
                converted = await anyio.to_thread.run_sync(convert, spool, fmt, csv, self.layout, on_part)
            finally:
                loop.call_soon_threadsafe(parts.put_nowait, None)

        try:
            if source.opened is not None:
                await source.opened()
            fmt = source.decide_format()
            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(_aborting, spool, conversion(fmt, source.csv()))
                    tasks.start_soon(_aborting, spool, self._upload(run, parts, slots))
                    await _aborting(spool, self._receive(source.chunks, spool))
            except BaseExceptionGroup as group:
                raise _first_error(group) from None
            assert converted is not None
            manifest = await self.catalog.commit(
                self.dataset,
                self.options.mode,
                schema=[Column.model_validate(f) for f in schema_fields(converted.schema)],
                files=self.uploaded,
            )
        except BaseException:
            spool.abort()
            with anyio.CancelScope(shield=True):
                await self._delete_uploaded()
                await _drain_parts(parts)
            raise
        finally:
            spool.close()
        return {
            "dataset": self.dataset,
            "version": manifest.version,
            "mode": self.options.mode,
            "rows": converted.rows,
            "files": [f.model_dump() for f in self.uploaded],
            "bytes_in": self.bytes_in,
            "bytes_out": sum(f.bytes for f in self.uploaded),
            "schema": schema_fields(converted.schema),
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    async def _delete_uploaded(self) -> None:
        for data_file in self.uploaded:
            try:
                await self.storage.delete(data_file.key)
            except StorageError as exc:
                # storaged is unreachable: say which object an operator must remove (never silently).
                structlog.get_logger("ingestd").error("orphan left", key=data_file.key, error=str(exc))


async def _aborting(spool: Spool, work: Awaitable[None]) -> None:
    """Run `work`; if it fails or is cancelled, wake the parser thread so the whole ingest stops promptly."""
    try:
        await work
    except BaseException:
        spool.abort()
        raise


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that explains the failure: a 400/413 from the parser or the body before a knock-on one."""
    flat: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            flat.append(exc)

    walk(group)
    for kind in (LakehouseError, StorageError, CatalogError):
        for exc in flat:
            if isinstance(exc, kind):
                return exc
    return flat[0]


async def _drain_parts(parts: asyncio.Queue[Part | None]) -> None:
    while not parts.empty():
        part = parts.get_nowait()
        if part is not None:
            part.path.unlink(missing_ok=True)


async def _file_chunks(part: Part) -> AsyncGenerator[bytes]:
    with open(part.path, "rb") as f:  # noqa: ASYNC230 - every read below runs on a worker thread
        while chunk := await anyio.to_thread.run_sync(f.read, UPLOAD_CHUNK):
            yield chunk
