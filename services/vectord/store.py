"""All of vectord's indexes, and the one place a logged op changes them (in order, the same at replay)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from services.vectord.index import VectorIndex
from services.vectord.ops import CreateIndex, Delete, DropIndex, Op, Upsert
from shared.errors import LakehouseError


@dataclass(frozen=True, slots=True)
class Applied:
    """What an op did: `created` for CreateIndex (False: it existed with the same parameters), `count` else."""

    created: bool = False
    count: int = 0


def no_index(name: str) -> LakehouseError:
    return LakehouseError("not_found", f'no index "{name}"; create it with PUT /v1/vectors/{name}')


def wrong_dimensions(index: VectorIndex, got: int, what: str) -> LakehouseError:
    return LakehouseError(
        "invalid_request", f'{what} has {got} dimensions; index "{index.name}" has {index.dimensions}'
    )


class Store:
    def __init__(self) -> None:
        self.indexes: dict[str, VectorIndex] = {}
        # Names changed since the last snapshot (dropped ones included): what the next checkpoint must save.
        self.dirty: set[str] = set()
        self._lock = threading.Lock()

    def get(self, name: str) -> VectorIndex:
        index = self.indexes.get(name)
        if index is None:
            raise no_index(name)
        return index

    def apply(self, op: Op) -> Applied:
        """Apply one op (blocking: run off the event loop). Raises LakehouseError when it cannot apply."""
        if isinstance(op, CreateIndex):
            return self._create(op)
        with self._lock:
            index = self.get(op.index)
            if isinstance(op, DropIndex):
                del self.indexes[op.index]
                self.dirty.add(op.index)
                return Applied(count=len(index))
        if isinstance(op, Upsert):
            if op.vectors.shape[1] != index.dimensions:
                raise wrong_dimensions(index, op.vectors.shape[1], "items[0].vector")
            index.upsert(op.ids, op.vectors, op.metadata)
            self.dirty.add(op.index)
            return Applied(count=len(op.ids))
        assert isinstance(op, Delete)
        deleted = index.delete(op.ids)
        if deleted:
            self.dirty.add(op.index)
        return Applied(count=deleted)

    def _create(self, op: CreateIndex) -> Applied:
        with self._lock:
            existing = self.indexes.get(op.index)
            if existing is None:
                self.indexes[op.index] = VectorIndex(op.index, op.dimensions, op.metric)
                self.dirty.add(op.index)
                return Applied(created=True)
        if (existing.dimensions, existing.metric) != (op.dimensions, op.metric):
            raise LakehouseError(
                "already_exists",
                f'index "{op.index}" exists with dimensions {existing.dimensions} and metric "{existing.metric}"; '
                f'asked for dimensions {op.dimensions} and metric "{op.metric}" (delete it first to change them)',
            )
        return Applied(created=False)
