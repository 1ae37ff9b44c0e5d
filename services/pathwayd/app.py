"""pathwayd: pathway memory, traces of multi-step work in a durable JSONL log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.pathwayd.schemas import TraceIn, TraceWritten
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.jsonlog.index import LogSpec
from shared.jsonlog.log import JsonLog
from shared.jsonlog.paging import filters, page_query, page_response
from shared.web.app import service_app
from shared.web.body import read_json


def trace_record(trace: TraceIn) -> dict[str, Any]:
    """The record as stored: the id first (generated when absent), then what the client sent."""
    record: dict[str, Any] = {"id": trace.id or uuid.uuid4().hex}
    record.update(trace.model_dump(mode="json", exclude_unset=True, exclude={"id"}))
    return record


def stats_body(log: JsonLog) -> dict[str, Any]:
    index = log.index
    n = index.visible
    ts = index.ts.view(n)

    def moment(micros: int) -> str:
        return log.codec.format(micros)

    kinds = {
        kind: {"count": s.count, "first_ts": moment(s.first_ts), "last_ts": moment(s.last_ts)}
        for kind, s in sorted(index.tag_stats("kind").items())
    }
    return {
        "count": n,
        "first_ts": moment(int(ts[0])) if n else None,
        "last_ts": moment(int(ts[-1])) if n else None,
        "kinds": kinds,
    }


def create_app(config: LakehouseConfig) -> Starlette:
    section = config.pathwayd
    spec = LogSpec(tags=("kind",), unique="id", counted=("kind",), max_record_bytes=section.max_record_bytes)
    log = JsonLog(section.persist_path, spec, name="pathwayd")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with log:
            yield

    async def post_trace(request: Request) -> JSONResponse:
        trace = await read_json(request, TraceIn, max_bytes=section.max_body_bytes)
        record = trace_record(trace)
        (stamp,) = await log.append([record])
        written = TraceWritten(id=record["id"], seq=stamp.seq, ts=stamp.ts)
        return JSONResponse(written.model_dump(), status_code=201)

    async def list_traces(request: Request) -> Response:
        query = page_query(request.query_params)
        rows, next_seq = log.index.select(
            after=query.after,
            limit=query.limit,
            since=query.since,
            until=query.until,
            where=filters(request.query_params, ("kind",)),
        )
        return page_response(await log.read(rows), next_seq)

    async def get_trace(request: Request) -> Response:
        trace_id: str = request.path_params["id"]
        row = log.index.row_of(trace_id)
        if row is None:
            raise LakehouseError("not_found", f"no trace with id {trace_id[:128]!r}")
        (data,) = await log.read([row])
        return Response(data, media_type="application/json")

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(stats_body(log))

    routes = [
        Route("/v1/pathway/traces", post_trace, methods=["POST"]),
        Route("/v1/pathway/traces", list_traces, methods=["GET"]),
        Route("/v1/pathway/traces/{id}", get_trace, methods=["GET"]),
        Route("/v1/pathway/stats", stats, methods=["GET"]),
    ]
    return service_app("pathwayd", config, routes, lifespan=lifespan)
