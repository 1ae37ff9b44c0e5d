"""The changes vectord logs: each group commit is one record of ops, applied in order, at startup replayed in order.

A record is binary: 8 bytes of header length, a JSON header (the ops, vectors referenced by row), then the float32
rows of every upsert, little-endian. JSON for 1,000 vectors of 384 floats would be ~4x the bytes and slow to parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from services.vectord.index import Metric, Vectors

MAGIC = b"VWAL1\n"


@dataclass(frozen=True, slots=True)
class CreateIndex:
    index: str
    dimensions: int
    metric: Metric


@dataclass(frozen=True, slots=True)
class DropIndex:
    index: str


@dataclass(frozen=True, slots=True)
class Upsert:
    index: str
    ids: list[str]
    vectors: Vectors
    metadata: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Delete:
    index: str
    ids: list[str]


Op = CreateIndex | DropIndex | Upsert | Delete


def encode_record(ops: list[Op]) -> bytes:
    header: list[dict[str, Any]] = []
    blocks: list[bytes] = []
    offset = 0  # in floats, into the data after the header
    for op in ops:
        if isinstance(op, CreateIndex):
            header.append({"op": "create", "index": op.index, "dimensions": op.dimensions, "metric": op.metric})
        elif isinstance(op, DropIndex):
            header.append({"op": "drop", "index": op.index})
        elif isinstance(op, Delete):
            header.append({"op": "delete", "index": op.index, "ids": op.ids})
        else:
            rows, dims = op.vectors.shape
            header.append(
                {"op": "upsert", "index": op.index, "ids": op.ids, "metadata": op.metadata, "at": offset, "dims": dims}
            )
            blocks.append(np.ascontiguousarray(op.vectors, dtype="<f4").tobytes())
            offset += rows * dims
    head = orjson.dumps(header)
    return MAGIC + len(head).to_bytes(8, "little") + head + b"".join(blocks)


def decode_record(blob: bytes) -> list[Op]:
    if not blob.startswith(MAGIC):
        raise ValueError("not a vectord log record")
    at = len(MAGIC)
    size = int.from_bytes(blob[at : at + 8], "little")
    header = orjson.loads(blob[at + 8 : at + 8 + size])
    data = np.frombuffer(blob, dtype="<f4", offset=at + 8 + size)
    ops: list[Op] = []
    for entry in header:
        kind = entry["op"]
        if kind == "create":
            ops.append(CreateIndex(entry["index"], entry["dimensions"], entry["metric"]))
        elif kind == "drop":
            ops.append(DropIndex(entry["index"]))
        elif kind == "delete":
            ops.append(Delete(entry["index"], entry["ids"]))
        else:
            count, dims, start = len(entry["ids"]), entry["dims"], entry["at"]
            vectors = data[start : start + count * dims].reshape(count, dims).astype(np.float32)
            ops.append(Upsert(entry["index"], entry["ids"], vectors, entry["metadata"]))
    return ops
