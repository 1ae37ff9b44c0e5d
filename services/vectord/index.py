"""One vector index: a usearch HNSW graph plus the ids, metadata and metadata filter postings around it.

Blocking and not async: callers run it off the event loop. A lock per index keeps writers and readers apart
(usearch's own structures aside, the id maps and postings are plain Python).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
from usearch.index import Index

Metric = Literal["cosine", "l2", "ip"]
Vectors = npt.NDArray[np.float32]

USEARCH_METRIC: dict[Metric, str] = {"cosine": "cos", "l2": "l2sq", "ip": "ip"}
# Candidates asked of HNSW for a filtered query, as a multiple of k over the filter's selectivity.
OVERFETCH = 2.0
# Below this many filter matches an exact scan of them is cheaper (and exact) than over-fetching.
EXACT_BELOW = 4096
HNSW_CONNECTIVITY = 16
HNSW_EXPANSION_ADD = 128
HNSW_EXPANSION_SEARCH = 128


def scores_from_distances(metric: Metric, distances: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """usearch distances → scores where higher is better: cosine similarity, inner product, -L2 distance."""
    d = distances.astype(np.float64)
    if metric == "l2":
        out: npt.NDArray[np.float64] = -np.sqrt(np.maximum(d, 0.0))
        return out
    return 1.0 - d


def exact_scores(metric: Metric, vectors: Vectors, query: Vectors) -> npt.NDArray[np.float64]:
    v = vectors.astype(np.float64)
    q = query.astype(np.float64)
    if metric == "ip":
        out: npt.NDArray[np.float64] = v @ q
    elif metric == "cosine":
        out = (v @ q) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
    else:
        out = -np.linalg.norm(v - q, axis=1)
    return out


def posting_key(field: str, value: Any) -> bytes:
    """Equality on JSON values: 1 and 1.0 are equal, key order in objects is not significant."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return field.encode() + b"\x00" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class Match:
    id: str
    score: float
    metadata: dict[str, Any]
    vector: list[float] | None = None


class VectorIndex:
    def __init__(self, name: str, dimensions: int, metric: Metric, *, graph: Index | None = None) -> None:
        self.name = name
        self.dimensions = dimensions
        self.metric = metric
        self.lock = threading.RLock()
        self.graph = graph or Index(
            ndim=dimensions,
            metric=USEARCH_METRIC[metric],
            dtype="f32",  # scores are compared across corpora (matrixd): keep them exact, not bf16
            connectivity=HNSW_CONNECTIVITY,
            expansion_add=HNSW_EXPANSION_ADD,
            expansion_search=HNSW_EXPANSION_SEARCH,
        )
        # usearch keeps the graph's shape in its serialization, not the search-time setting.
        self.graph.expansion_search = HNSW_EXPANSION_SEARCH  # type: ignore[misc]  # it has a setter
        self.key_of: dict[str, int] = {}
        self.id_of: dict[int, str] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self.postings: dict[bytes, set[int]] = {}
        self.next_key = 0

    def __len__(self) -> int:
        return len(self.key_of)

    def _index_metadata(self, key: int, metadata: dict[str, Any], *, add: bool) -> None:
        for field, value in metadata.items():
            pk = posting_key(field, value)
            if add:
                self.postings.setdefault(pk, set()).add(key)
            else:
                keys = self.postings.get(pk)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self.postings[pk]

    def _forget(self, item_id: str) -> int | None:
        key = self.key_of.pop(item_id, None)
        if key is None:
            return None
        del self.id_of[key]
        self._index_metadata(key, self.metadata.pop(item_id), add=False)
        return key

    def upsert(self, ids: list[str], vectors: Vectors, metadata: list[dict[str, Any]]) -> None:
        """Add or replace items; a later duplicate id in the same call wins. Each write gets a fresh key."""
        with self.lock:
            last = {item_id: i for i, item_id in enumerate(ids)}
            rows = sorted(last.values())
            stale = [key for item_id in last if (key := self._forget(item_id)) is not None]
            if stale:
                self.graph.remove(np.array(stale, dtype=np.uint64))
            keys = np.arange(self.next_key, self.next_key + len(rows), dtype=np.uint64)
            self.next_key += len(rows)
            self.graph.add(keys, np.ascontiguousarray(vectors[rows]))
            for key, row in zip(keys.tolist(), rows, strict=True):
                item_id = ids[row]
                self.key_of[item_id] = key
                self.id_of[key] = item_id
                self.metadata[item_id] = metadata[row]
                self._index_metadata(key, metadata[row], add=True)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove the ids that exist; how many did."""
        with self.lock:
            keys = [key for item_id in ids if (key := self._forget(item_id)) is not None]
            if keys:
                self.graph.remove(np.array(keys, dtype=np.uint64))
            return len(keys)

    def _filtered_keys(self, where: dict[str, Any]) -> set[int]:
        sets = [self.postings.get(posting_key(field, value), set()) for field, value in where.items()]
        sets.sort(key=len)
        result = set(sets[0])
        for other in sets[1:]:
            result &= other
        return result

    def _exact(self, keys: list[int], query: Vectors, k: int) -> list[tuple[int, float]]:
        if not keys:
            return []
        vectors = np.asarray(self.graph.get(np.array(keys, dtype=np.uint64)), dtype=np.float32)
        scores = exact_scores(self.metric, vectors, query)
        top = np.argsort(-scores, kind="stable")[:k]
        return [(keys[i], float(scores[i])) for i in top]

    def _hnsw(self, query: Vectors, count: int) -> list[tuple[int, float]]:
        found = self.graph.search(query, count)
        scores = scores_from_distances(self.metric, np.asarray(found.distances))
        return [
            (int(key), float(score))
            for key, score in zip(found.keys.tolist(), scores, strict=True)
            if int(key) in self.id_of
        ]

    def query(
        self, query: Vectors, k: int, where: dict[str, Any] | None = None, *, include_vectors: bool = False
    ) -> list[Match]:
        with self.lock:
            total = len(self.key_of)
            if where:
                allowed = self._filtered_keys(where)
                if len(allowed) <= max(EXACT_BELOW, k):
                    hits = self._exact(sorted(allowed), query, k)
                else:
                    # Over-fetch in proportion to how rare matches are; if HNSW still returns fewer than k
                    # that pass, scan the matches exactly: a filter never returns fewer than k when k exist.
                    want = min(total, int(k * OVERFETCH * total / len(allowed)) + k)
                    hits = [(key, score) for key, score in self._hnsw(query, want) if key in allowed][:k]
                    if len(hits) < min(k, len(allowed)):
                        hits = self._exact(sorted(allowed), query, k)
            else:
                # HNSW is approximate even when asked for everything: short answers get an exact scan.
                hits = self._hnsw(query, k) if 0 < k < total else []
                if len(hits) < min(k, total):
                    hits = self._exact(list(self.id_of), query, k)
            matches = [Match(self.id_of[key], score, self.metadata[self.id_of[key]]) for key, score in hits]
            if include_vectors and hits:
                vectors = np.asarray(self.graph.get(np.array([key for key, _ in hits], dtype=np.uint64)))
                matches = [
                    Match(m.id, m.score, m.metadata, row.astype(np.float64).tolist())
                    for m, row in zip(matches, vectors, strict=True)
                ]
            return matches

    def snapshot(self) -> bytes:
        """The whole index as one blob: a JSON header (ids, keys, metadata) then usearch's own serialization."""
        with self.lock:
            header = orjson.dumps(
                {
                    "name": self.name,
                    "dimensions": self.dimensions,
                    "metric": self.metric,
                    "next_key": self.next_key,
                    "ids": list(self.key_of.items()),
                    "metadata": self.metadata,
                }
            )
            graph = self.graph.save()
        assert graph is not None
        return len(header).to_bytes(8, "little") + header + bytes(graph)

    @classmethod
    def from_snapshot(cls, blob: bytes) -> VectorIndex:
        view = memoryview(blob)  # slices of a view copy nothing: the graph is most of the blob
        size = int.from_bytes(view[:8], "little")
        header = orjson.loads(view[8 : 8 + size])
        graph = Index.restore(view[8 + size :])
        if graph is None:
            raise ValueError(f"index {header['name']!r}: the snapshot's graph does not load")
        return cls.from_parts(header, graph)

    @classmethod
    def from_parts(cls, header: dict[str, Any], graph: Index) -> VectorIndex:
        """The index from a snapshot's header (as `snapshot` writes it) and its restored graph."""
        index = cls(header["name"], header["dimensions"], header["metric"], graph=graph)
        index.next_key = header["next_key"]
        # Built whole rather than item by item: a restart's cost is this and usearch's restore.
        index.key_of = dict(header["ids"])
        index.id_of = {key: item_id for item_id, key in header["ids"]}
        index.metadata = header["metadata"]
        for item_id, meta in index.metadata.items():
            if meta:
                index._index_metadata(index.key_of[item_id], meta, add=True)
        return index
