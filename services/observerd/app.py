"""observerd: the ops log, one durable JSONL record per operation any service reports, and its summary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from pydantic import RootModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.observerd.schemas import OpIn, OpsBatch
from services.observerd.summary import summarize, window_micros
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.jsonlog.index import LogSpec
from shared.jsonlog.log import JsonLog
from shared.jsonlog.paging import filters, page_query, page_response
from shared.jsonlog.timestamps import now_micros
from shared.web.app import service_app
from shared.web.body import describe_validation, read_json

STATUSES = frozenset({"ok", "error"})


class JsonObject(RootModel[dict[str, Any]]):
    pass


def parse_ops(body: dict[str, Any]) -> tuple[list[OpIn], bool]:
    """The ops of a body that is one op or {"ops": [...]}, and whether it was a batch."""
    try:
        if "ops" in body:
            return OpsBatch.model_validate(body).ops, True
        return [OpIn.model_validate(body)], False
    except ValidationError as exc:
        raise LakehouseError("invalid_request", describe_validation(exc)) from None


def create_app(config: LakehouseConfig) -> Starlette:
    section = config.observerd
    spec = LogSpec(tags=("service", "op", "status"), number="duration_ms", max_record_bytes=section.max_record_bytes)
    log = JsonLog(section.persist_path, spec, name="observerd")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with log:
            yield

    async def post_ops(request: Request) -> JSONResponse:
        body = await read_json(request, JsonObject, max_bytes=section.max_body_bytes)
        ops, batch = parse_ops(body.root)
        stamps = await log.append([op.model_dump(mode="json", exclude_unset=True) for op in ops])
        if batch:
            return JSONResponse({"seqs": [s.seq for s in stamps], "ts": stamps[0].ts}, status_code=201)
        return JSONResponse({"seq": stamps[0].seq, "ts": stamps[0].ts}, status_code=201)

    async def list_ops(request: Request) -> Response:
        query = page_query(request.query_params)
        where = filters(request.query_params, ("service", "op", "status"), {"status": STATUSES})
        rows, next_seq = log.index.select(
            after=query.after, limit=query.limit, since=query.since, until=query.until, where=where
        )
        return page_response(await log.read(rows), next_seq)

    async def summary(request: Request) -> JSONResponse:
        window = request.query_params.get("window", "1h")
        now = now_micros()
        since = now - window_micros(window)
        rows = await anyio.to_thread.run_sync(summarize, log.index, since)
        return JSONResponse(
            {
                "window": window,
                "since": log.codec.format(since),
                "until": log.codec.format(now),
                "ops": [row.model_dump() for row in rows],
            }
        )

    routes = [
        Route("/v1/observer/ops", post_ops, methods=["POST"]),
        Route("/v1/observer/ops", list_ops, methods=["GET"]),
        Route("/v1/observer/summary", summary, methods=["GET"]),
    ]
    return service_app("observerd", config, routes, lifespan=lifespan)
