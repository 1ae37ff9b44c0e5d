"""vectord's wire models (shared by the app and the client)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from shared.web.wire import WireModel

MAX_DIMENSIONS = 4096
MAX_K = 1000
MAX_ITEMS = 10_000
MAX_BODY_BYTES = 64 << 20
# Index names become storaged keys (vectord/snapshots/<name>/...): a safe, short alphabet.
INDEX_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

Metric = Literal["cosine", "l2", "ip"]
# Finite JSON numbers only: NaN, Infinity and numeric strings are refused by name.
Component = Annotated[float, Field(strict=True, allow_inf_nan=False)]
ItemId = Annotated[StrictStr, Field(min_length=1, max_length=512)]


class CreateIndexRequest(WireModel):
    dimensions: StrictInt = Field(ge=1, le=MAX_DIMENSIONS)
    metric: Metric = "cosine"


class IndexInfo(WireModel):
    name: str
    dimensions: int
    metric: Metric
    count: int


class IndexList(WireModel):
    indexes: list[IndexInfo]


class Item(WireModel):
    id: ItemId
    vector: list[Component] = Field(min_length=1)
    metadata: dict[str, Any] | None = None


class UpsertRequest(WireModel):
    items: list[Item] = Field(min_length=1, max_length=MAX_ITEMS)


class UpsertResult(WireModel):
    upserted: int


class DeleteRequest(WireModel):
    ids: list[ItemId] = Field(min_length=1, max_length=MAX_ITEMS)


class DeleteResult(WireModel):
    deleted: int


class QueryRequest(WireModel):
    vector: list[Component] = Field(min_length=1)
    k: StrictInt = Field(10, ge=1, le=MAX_K)
    filter: dict[str, Any] | None = None
    include_vectors: StrictBool = False


class Match(WireModel):
    id: str
    score: float
    metadata: dict[str, Any]
    vector: list[float] | None = None


class QueryResult(WireModel):
    matches: list[Match]
