"""Persistence through storaged: a log record per group commit, and snapshots that let the log be trimmed.

Objects, under `vectord/`:
- `wal/<seq>`: one record (services/vectord/ops.py) per group commit, written create-only before it is applied.
- `snapshots/<index>/<seq>`: an index as of record <seq> (ids, metadata and the HNSW graph).
- `manifest/<seq>.json`: which snapshot holds each index as of record <seq>; the newest one is the checkpoint.

A write costs one object the size of its change. Once the log since the last checkpoint passes `snapshot_bytes`,
the indexes that changed are snapshotted, a new manifest names them, and the records it covers are deleted.
Startup loads the newest manifest's snapshots, then replays the records after it, in order. A clean stop
(SIGTERM) checkpoints first, so the start after it replays nothing.
"""

from __future__ import annotations

import asyncio
import contextlib

import anyio
import numpy as np
import orjson
import structlog

from services.storaged.client import StoragedClient, StorageError
from services.storaged.schemas import VECTORD_PREFIX
from services.vectord.cache import SnapshotCache
from services.vectord.index import VectorIndex
from services.vectord.ops import Op, Upsert, decode_record, encode_record
from services.vectord.store import Store
from shared.errors import ErrorCode, LakehouseError

PREFIX = VECTORD_PREFIX
WAL = PREFIX + "wal/"
SNAPSHOTS = PREFIX + "snapshots/"
MANIFESTS = PREFIX + "manifest/"
REPLAY_BATCH = 16_384  # vectors gathered from the log before one add: usearch's threads want large batches


def seq_name(seq: int) -> str:
    return f"{seq:020d}"


def storage_failure(what: str, exc: StorageError) -> LakehouseError:
    # storaged's own 404/409 mean nothing to vectord's caller: report them as an upstream error, naming storaged.
    code: ErrorCode = "upstream_error"
    if exc.code in ("upstream_unavailable", "upstream_timeout"):
        code = "upstream_unavailable" if exc.code == "upstream_unavailable" else "upstream_timeout"
    return LakehouseError(code, f"{what}: storaged: {exc.message}")


class StoragedLog:
    def __init__(self, client: StoragedClient, *, snapshot_bytes: int, cache: SnapshotCache | None = None) -> None:
        self.client = client
        self.snapshot_bytes = snapshot_bytes
        self.cache = cache
        # index name → where recover found its snapshot: "cache" (the local copy) or "storaged"
        self.loaded_from: dict[str, str] = {}
        self.next_seq = 1
        self.checkpoint_seq = 0
        self.bytes_since_checkpoint = 0
        # index name → the snapshot object that holds it as of the checkpoint
        self.snapshot_keys: dict[str, str] = {}
        self._checkpointing: asyncio.Task[None] | None = None
        # indexes whose snapshot upload failed: saved again by the next checkpoint
        self._redo: set[str] = set()

    async def _keys(self, prefix: str) -> list[str]:
        return [info.key async for info in self.client.iter_objects(prefix)]

    async def recover(self, store: Store) -> int:
        """Rebuild `store` from storaged; the number of log records replayed."""
        manifests = await self._keys(MANIFESTS)
        if manifests:
            manifest = orjson.loads(await self.client.get_bytes(manifests[-1]))
            self.checkpoint_seq = int(manifest["seq"])
            self.snapshot_keys = dict(manifest["indexes"])
            for name, key in self.snapshot_keys.items():
                store.indexes[name] = await self._load_snapshot(name, key)
        records = [key for key in await self._keys(WAL) if int(key.rpartition("/")[2]) > self.checkpoint_seq]
        # The next record is fetched while this one's ops are added; runs of upserts are added as one batch.
        pending: list[Op] = []
        fetching = asyncio.ensure_future(self.client.get_bytes(records[0])) if records else None
        try:
            for at in range(len(records)):
                assert fetching is not None
                blob = await fetching
                following = records[at + 1] if at + 1 < len(records) else None
                fetching = asyncio.ensure_future(self.client.get_bytes(following)) if following else None
                self.bytes_since_checkpoint += len(blob)
                pending.extend(decode_record(blob))
                if sum(len(op.ids) for op in pending if isinstance(op, Upsert)) >= REPLAY_BATCH or fetching is None:
                    await anyio.to_thread.run_sync(_replay, store, pending)
                    pending = []
        finally:
            if fetching is not None:  # a failed load: the record fetched ahead is not wanted
                fetching.cancel()
                await asyncio.gather(fetching, return_exceptions=True)
        last = int(records[-1].rpartition("/")[2]) if records else self.checkpoint_seq
        self.next_seq = last + 1
        return len(records)

    async def _load_snapshot(self, name: str, key: str) -> VectorIndex:
        """The index from its local copy when that is the snapshot storaged holds, else from storaged (and the copy
        is made, for the next start)."""
        seq = key.rpartition("/")[2]
        if self.cache is not None:
            etag = (await self.client.head(key)).etag
            index = await anyio.to_thread.run_sync(self.cache.load, name, seq, etag)
            if index is not None:
                self.loaded_from[name] = "cache"
                return index
        blob, meta = await self.client.get_small(key)
        index = await anyio.to_thread.run_sync(VectorIndex.from_snapshot, blob)
        if self.cache is not None:
            await anyio.to_thread.run_sync(self.cache.save, name, seq, blob, meta.etag)
        self.loaded_from[name] = "storaged"
        return index

    async def append(self, ops: list[Op]) -> None:
        seq = self.next_seq
        # Numbers are never reused: a record whose write failed may still have landed.
        self.next_seq += 1
        blob = await anyio.to_thread.run_sync(encode_record, ops)
        key = WAL + seq_name(seq)
        try:
            await self.client.put(key, blob, if_none_match=True)
        except StorageError as exc:
            with contextlib.suppress(StorageError):
                await self.client.delete(key)
            raise storage_failure("the change was not saved and not applied", exc) from None
        self.bytes_since_checkpoint += len(blob)

    async def after_apply(self, store: Store) -> None:
        busy = self._checkpointing is not None and not self._checkpointing.done()
        if self.bytes_since_checkpoint < self.snapshot_bytes or busy:
            return
        await self.checkpoint(store)

    async def when_idle(self, store: Store) -> None:
        """No write for a while: snapshot what the log holds, so that a crash now replays nothing."""
        busy = self._checkpointing is not None and not self._checkpointing.done()
        if not busy and (self.has_unsnapshotted_records or store.dirty or self._redo):
            await self.checkpoint(store)

    async def checkpoint(self, store: Store, *, wait: bool = False) -> None:
        """Snapshot the changed indexes as of the last applied record; the upload runs in the background.

        Called between applies, so the snapshots are exactly the state after record `seq`.
        """
        seq = self.next_seq - 1
        dirty, store.dirty = set(store.dirty) | self._redo, set()
        self._redo = set()
        try:
            blobs = {
                name: await anyio.to_thread.run_sync(store.indexes[name].snapshot)
                for name in sorted(dirty)
                if name in store.indexes
            }
        except BaseException:
            # Cancelled (a stop) or failed: these still need saving, or a later checkpoint would cover their
            # records with their old snapshots.
            self._redo.update(dirty)
            raise
        names = set(store.indexes)
        self.bytes_since_checkpoint = 0
        self._checkpointing = asyncio.create_task(self._upload(seq, blobs, names, dirty))
        if wait:
            await self._checkpointing

    async def _upload(self, seq: int, blobs: dict[str, bytes], names: set[str], dirty: set[str]) -> None:
        log = structlog.get_logger("vectord")
        try:
            keys = {name: key for name, key in self.snapshot_keys.items() if name in names and name not in dirty}
            etags: dict[str, str] = {}
            for name, blob in blobs.items():
                key = f"{SNAPSHOTS}{name}/{seq_name(seq)}"
                etags[name] = (await self.client.put(key, blob)).etag
                keys[name] = key
            manifest = orjson.dumps({"seq": seq, "indexes": keys})
            await self.client.put(MANIFESTS + seq_name(seq) + ".json", manifest)
            if self.cache is not None:
                cache = self.cache
                for name, blob in blobs.items():  # once the manifest names them: a copy never runs ahead of it
                    await anyio.to_thread.run_sync(cache.save, name, seq_name(seq), blob, etags[name])
                await anyio.to_thread.run_sync(cache.forget, set(keys))
            old_keys = set(self.snapshot_keys.values()) - set(keys.values())
            self.snapshot_keys, self.checkpoint_seq = keys, seq
            # Only now is the covered log redundant.
            for key in await self._keys(WAL):
                if int(key.rpartition("/")[2]) <= seq:
                    await self.client.delete(key)
            for key in old_keys:
                await self.client.delete(key)
            for key in await self._keys(MANIFESTS):
                if key != MANIFESTS + seq_name(seq) + ".json":
                    await self.client.delete(key)
            log.info("checkpoint", seq=seq, snapshots=len(blobs))
        except StorageError as exc:
            # The log still holds everything: a failed checkpoint costs replay time at startup, never data.
            log.warning("checkpoint failed", seq=seq, error=exc.message)
            self.bytes_since_checkpoint = self.snapshot_bytes
            self._redo.update(dirty)

    @property
    def has_unsnapshotted_records(self) -> bool:
        return self.next_seq - 1 > self.checkpoint_seq

    async def aclose(self, store: Store | None = None) -> None:
        """Wait for a checkpoint in flight. With `store` (a clean stop, the committer already stopped), then
        checkpoint whatever the log holds since the last one, so the next start loads snapshots and replays
        nothing: replay rebuilds the HNSW graph vector by vector, a snapshot restores it whole."""
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        if store is not None and (self.has_unsnapshotted_records or store.dirty or self._redo):
            await self.checkpoint(store, wait=True)


def _replay(store: Store, ops: list[Op]) -> None:
    """Apply logged ops in order, each run of consecutive upserts into one index (of one width) as one upsert:
    usearch adds a large batch on all its threads at once. The state is the same, since one upsert lets a later
    duplicate id win, as a later upsert would, and a run's upserts all apply or all fail alike."""
    run: list[Upsert] = []
    for op in ops:
        if (
            isinstance(op, Upsert)
            and run
            and (run[-1].index, run[-1].vectors.shape[1]) == (op.index, op.vectors.shape[1])
        ):
            run.append(op)
            continue
        _apply(store, merged(run))
        run = [op] if isinstance(op, Upsert) else []
        if not isinstance(op, Upsert):
            _apply(store, op)
    _apply(store, merged(run))


def merged(run: list[Upsert]) -> Op | None:
    if len(run) <= 1:
        return run[0] if run else None
    return Upsert(
        run[0].index,
        [item for op in run for item in op.ids],
        np.concatenate([op.vectors for op in run]),
        [meta for op in run for meta in op.metadata],
    )


def _apply(store: Store, op: Op | None) -> None:
    # An op that failed when it was first applied fails the same way now.
    if op is not None:
        with contextlib.suppress(LakehouseError):
            store.apply(op)
