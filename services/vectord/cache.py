"""A local copy of each index's latest snapshot, so a restart restores the graph from a file instead of storaged.

storaged holds the snapshots (vectord may run on another box, and storaged is what is backed up); fetching 160 MiB
of graph over HTTP and parsing it took most of a restart. Each checkpoint therefore also leaves its snapshots in
`[vectord] cache_dir`: `<index>/<seq>.json` (the snapshot's header, with the ETag storaged gave the snapshot) beside
`<index>/<seq>.usearch` (usearch's own file, restored from the path). A copy counts only while its ETag is that of
the snapshot the manifest names (one HEAD): a cache left from another storaged, or cut short by a crash, is ignored
and replaced, never served. Writes go to a temp name and are renamed, so a reader sees a whole file or none; they are
not fsynced, since storaged's copy is the durable one.

Blocking (files, usearch): callers run it off the event loop.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from pathlib import Path
from typing import Any

import orjson
import structlog
from usearch.index import Index

from services.vectord.index import VectorIndex

HEADER = ".json"
GRAPH = ".usearch"


def _replace(path: Path, data: bytes | memoryview) -> None:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        temp.write_bytes(data)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


class SnapshotCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _paths(self, name: str, seq: str) -> tuple[Path, Path]:
        folder = self.directory / name
        return folder / (seq + HEADER), folder / (seq + GRAPH)

    def save(self, name: str, seq: str, blob: bytes, etag: str) -> None:
        """Keep the snapshot `blob` (VectorIndex.snapshot's format) of `name` as of `seq`, which storaged holds
        with `etag`; older copies of the index go."""
        view = memoryview(blob)
        size = int.from_bytes(view[:8], "little")
        header: dict[str, Any] = orjson.loads(view[8 : 8 + size])
        header["etag"] = etag
        header["graph_bytes"] = len(view) - 8 - size
        header_path, graph_path = self._paths(name, seq)
        try:
            header_path.parent.mkdir(parents=True, exist_ok=True)
            _replace(graph_path, view[8 + size :])  # the graph first: a header names only a graph that is whole
            _replace(header_path, orjson.dumps(header))
            for other in header_path.parent.iterdir():
                if other.stem != seq:
                    other.unlink(missing_ok=True)
        except OSError as exc:
            # A cache that cannot be written costs the next restart a fetch from storaged, nothing else.
            structlog.get_logger("vectord").warning("snapshot cache not written", index=name, error=exc.strerror)

    def load(self, name: str, seq: str, etag: str) -> VectorIndex | None:
        """The index from its local copy, if that copy is whole and of the snapshot storaged holds as `etag`."""
        header_path, graph_path = self._paths(name, seq)
        try:
            header = orjson.loads(header_path.read_bytes())
            if header.get("etag") != etag or graph_path.stat().st_size != header.get("graph_bytes"):
                return None
            graph = Index.restore(str(graph_path))
        except (OSError, orjson.JSONDecodeError, RuntimeError, ValueError):
            return None
        if graph is None:
            return None
        return VectorIndex.from_parts(header, graph)

    def forget(self, keep: set[str]) -> None:
        """Drop the copies of indexes not in `keep` (dropped since)."""
        with contextlib.suppress(OSError):
            for folder in self.directory.iterdir():
                if folder.is_dir() and folder.name not in keep:
                    shutil.rmtree(folder, ignore_errors=True)
