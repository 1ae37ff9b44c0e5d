"""vectord: named HNSW vector indexes with upsert, delete and filtered top-k query, saved through storaged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import numpy as np
import structlog
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.storaged.client import StoragedClient, StorageError
from services.vectord.cache import SnapshotCache
from services.vectord.committer import Committer
from services.vectord.index import Match, Metric, VectorIndex, Vectors
from services.vectord.ops import CreateIndex, Delete, DropIndex, Op, Upsert
from services.vectord.schemas import (
    INDEX_NAME,
    MAX_BODY_BYTES,
    CreateIndexRequest,
    DeleteRequest,
    QueryRequest,
    UpsertRequest,
)
from services.vectord.store import Applied, Store, wrong_dimensions
from services.vectord.wal import StoragedLog
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.web.app import service_app
from shared.web.body import read_json
from shared.web.responses import json_response

ModelT = TypeVar("ModelT", bound=BaseModel)
RETRY_MAX_SECS = 5.0


async def read_body(request: Request, model: type[ModelT]) -> ModelT:
    return await read_json(request, model, max_bytes=MAX_BODY_BYTES)


class Service:
    """What the routes need: the store (once loaded) and the committer every change goes through."""

    def __init__(self) -> None:
        self.store: Store | None = None
        self.committer: Committer | None = None
        self.load_error = "starting"

    def ready(self) -> tuple[Store, Committer]:
        if self.store is None or self.committer is None:
            raise LakehouseError(
                "service_unavailable", f"vectord is loading its indexes from storaged ({self.load_error}); retry soon"
            )
        return self.store, self.committer


def index_name(request: Request) -> str:
    name: str = request.path_params["index"]
    if not INDEX_NAME.fullmatch(name):
        raise LakehouseError(
            "invalid_request",
            f"index name {name[:140]!r} is not valid: 1-128 of A-Z a-z 0-9 . _ - starting with a letter or digit",
        )
    return name


def as_vectors(rows: list[list[float]], index: VectorIndex, what: str) -> Vectors:
    """float32 rows of the index's width, finite, and with a direction when the metric needs one."""
    for i, row in enumerate(rows):
        if len(row) != index.dimensions:
            raise wrong_dimensions(index, len(row), what.format(i=i))
    with np.errstate(over="ignore"):
        vectors = np.asarray(rows, dtype=np.float32)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        where = what.format(i=int(np.argmax(bad)))
        raise LakehouseError("invalid_request", f"{where} has a component too large for float32 (|x| > 3.4e38)")
    if index.metric == "cosine":
        zero = ~vectors.any(axis=1)
        if zero.any():
            where = what.format(i=int(np.argmax(zero)))
            raise LakehouseError("invalid_request", f"{where} is all zeros; cosine similarity needs a direction")
    return vectors


def info(index: VectorIndex) -> dict[str, Any]:
    return {"name": index.name, "dimensions": index.dimensions, "metric": index.metric, "count": len(index)}


def match_body(match: Match) -> dict[str, Any]:
    body: dict[str, Any] = {"id": match.id, "score": match.score, "metadata": match.metadata}
    if match.vector is not None:
        body["vector"] = match.vector
    return body


async def submit(request: Request, op: Op) -> Applied:
    _, committer = request.app.state.service.ready()
    applied: Applied = await committer.submit(op)
    return applied


async def list_indexes(request: Request) -> Response:
    store, _ = request.app.state.service.ready()
    return json_response({"indexes": [info(store.indexes[name]) for name in sorted(store.indexes)]})


async def create_index(request: Request) -> Response:
    name = index_name(request)
    body = await read_body(request, CreateIndexRequest)
    metric: Metric = body.metric
    applied = await submit(request, CreateIndex(name, body.dimensions, metric))
    store, _ = request.app.state.service.ready()
    return json_response(info(store.get(name)), 201 if applied.created else 200)


async def get_index(request: Request) -> Response:
    store, _ = request.app.state.service.ready()
    return json_response(info(store.get(index_name(request))))


async def drop_index(request: Request) -> Response:
    name = index_name(request)
    store, _ = request.app.state.service.ready()
    store.get(name)
    applied = await submit(request, DropIndex(name))
    return json_response({"name": name, "deleted": True, "count": applied.count})


async def upsert(request: Request) -> Response:
    name = index_name(request)
    store, _ = request.app.state.service.ready()
    index = store.get(name)
    body = await read_body(request, UpsertRequest)
    vectors = as_vectors([item.vector for item in body.items], index, "items[{i}].vector")
    op = Upsert(name, [item.id for item in body.items], vectors, [item.metadata or {} for item in body.items])
    applied = await submit(request, op)
    return json_response({"upserted": applied.count})


async def delete_items(request: Request) -> Response:
    name = index_name(request)
    store, _ = request.app.state.service.ready()
    store.get(name)
    body = await read_body(request, DeleteRequest)
    applied = await submit(request, Delete(name, body.ids))
    return json_response({"deleted": applied.count})


async def query(request: Request) -> Response:
    name = index_name(request)
    store, _ = request.app.state.service.ready()
    index = store.get(name)
    body = await read_body(request, QueryRequest)
    vector = as_vectors([body.vector], index, "vector")[0]
    matches = await anyio.to_thread.run_sync(
        lambda: index.query(vector, body.k, body.filter, include_vectors=body.include_vectors)
    )
    return json_response({"matches": [match_body(m) for m in matches]})


async def load(service: Service, log: StoragedLog, idle_secs: float) -> None:
    """Load from storaged, retrying until it answers: `lakehouse up` starts vectord and storaged together."""
    logger = structlog.get_logger("vectord")
    delay = 0.2
    while True:
        store = Store()
        try:
            replayed = await log.recover(store)
        except (StorageError, ValueError, KeyError) as exc:
            service.load_error = f"last attempt: {exc}"
            logger.warning("load from storaged failed; retrying", error=str(exc), retry_in_secs=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECS)
            continue
        committer = Committer(store, log, idle_secs=idle_secs)
        committer.start()
        service.store, service.committer = store, committer
        logger.info("loaded", indexes=len(store.indexes), records_replayed=replayed, snapshots_from=log.loaded_from)
        return


def create_app(config: LakehouseConfig) -> Starlette:
    settings = config.vectord

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = app.state.service = Service()
        if not settings.storaged_url:
            store = Store()
            service.store, service.committer = store, Committer(store, None)
            service.committer.start()
            yield
            await service.committer.aclose()
            return
        client = StoragedClient(settings.storaged_url, token=config.auth.token.get_secret_value(), internal=True)
        cache = SnapshotCache(Path(settings.cache_dir)) if settings.cache_dir else None
        log = StoragedLog(client, snapshot_bytes=settings.snapshot_bytes, cache=cache)
        # Loading runs after startup, so the process listens (and says `loading`) while storaged comes up too.
        app.state.ready = False
        loader = asyncio.create_task(load(service, log, settings.snapshot_idle_secs))
        loader.add_done_callback(lambda task: setattr(app.state, "ready", service.store is not None))
        try:
            yield
        finally:
            loader.cancel()
            await asyncio.gather(loader, return_exceptions=True)
            if service.committer is not None:
                await service.committer.aclose()
            await log.aclose(service.store)
            await client.aclose()

    routes = [
        Route("/v1/vectors", list_indexes, methods=["GET"]),
        Route("/v1/vectors/{index}", create_index, methods=["PUT"]),
        Route("/v1/vectors/{index}", get_index, methods=["GET"]),
        Route("/v1/vectors/{index}", drop_index, methods=["DELETE"]),
        Route("/v1/vectors/{index}/upsert", upsert, methods=["POST"]),
        Route("/v1/vectors/{index}/delete", delete_items, methods=["POST"]),
        Route("/v1/vectors/{index}/query", query, methods=["POST"]),
    ]
    return service_app("vectord", config, routes, lifespan=lifespan)
