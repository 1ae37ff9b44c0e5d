"""queryd's routes: POST /v1/sql, GET /v1/sql/datasets, POST /v1/sql/refresh."""

from __future__ import annotations

import asyncio
import os
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.catalogd.client import CatalogdClient
from services.queryd.engine import Engine, Query, S3Access, UnknownTable
from services.queryd.formats import MEDIA_TYPES, OutputFormat, choose_format, json_result, stream_result
from services.queryd.jsonvalues import dumps
from services.queryd.views import ViewRefresher
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.upstream.client import RemoteError
from shared.web.app import service_app
from shared.web.body import read_json

MAX_SQL_BODY = 1 << 20
# Queries wait for a worker thread here, not in anyio's shared pool that every other blocking call uses.
QUERY_THREADS = 64
STARTUP_REFRESH_SECS = 5.0


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sql: str = Field(min_length=1)
    params: list[Any] | None = None
    max_rows: int = Field(10_000, ge=0, le=10_000_000, description="JSON output only; streamed formats are uncapped")


def s3_access(config: LakehouseConfig) -> S3Access:
    """The [s3] section, with the credentials from `secrets_path` when that TOML file exists."""
    s3 = config.s3
    key_id, secret = s3.access_key_id, s3.secret_access_key.get_secret_value()
    path = Path(config.queryd.secrets_path)
    if path.is_file():
        data = tomllib.loads(path.read_text())
        table = data.get("s3", data)
        key_id = str(table.get("access_key_id", key_id))
        secret = str(table.get("secret_access_key", secret))
    return S3Access(
        bucket=s3.bucket,
        endpoint=s3.endpoint,
        region=s3.region,
        access_key_id=key_id,
        secret_access_key=secret,
        use_path_style=s3.use_path_style,
    )


def build_engine(config: LakehouseConfig) -> Engine:
    section = config.queryd
    s3 = config.storaged.backend == "s3"
    return Engine(
        threads=section.threads or os.cpu_count() or 1,
        memory_limit=section.memory_limit,
        data_root=None if s3 else Path(config.storaged.root),
        s3=s3_access(config) if s3 else None,
    )


def create_app(config: LakehouseConfig) -> Starlette:
    section = config.queryd
    token = config.auth.token.get_secret_value()
    limiter = anyio.CapacityLimiter(QUERY_THREADS)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = await anyio.to_thread.run_sync(build_engine, config)
        try:
            async with CatalogdClient(section.catalogd_url, token=token) as catalog:
                refresher = ViewRefresher(engine, catalog)
                app.state.engine = engine
                app.state.refresher = refresher
                # Views are loaded before serving, but a slow catalogd must not hold startup: the poller and the
                # unknown-table look catch up.
                with anyio.move_on_after(STARTUP_REFRESH_SECS):
                    await refresher.refresh_logged()
                poller = asyncio.create_task(refresher.run_every(section.refresh_every_secs))
                try:
                    yield
                finally:
                    poller.cancel()
                    with suppress(asyncio.CancelledError):
                        await poller
        finally:
            await anyio.to_thread.run_sync(engine.close)

    async def sql(request: Request) -> Response:
        started = time.perf_counter()
        fmt = choose_format(request.headers.get("accept", ""))
        if fmt is None:
            raise LakehouseError(
                "invalid_request",
                "Accept: expected one of application/json, application/x-ndjson, text/csv, "
                "application/vnd.apache.arrow.stream",
            )
        body = await _sql_request(request)
        await request.app.state.refresher.ensure_fresh(FRESH_SECS)
        # The statement is classified read-only by Query.start, on the worker thread (DuckDB's parser, off the loop).
        try:
            return await run(request, body, fmt, started)
        except UnknownTable:
            # A dataset ingested since the last poll: look at the catalog once (an ETag GET) and try again.
            if not await _refreshed(request.app.state.refresher):
                raise
        return await run(request, body, fmt, started)

    async def run(request: Request, body: SqlRequest, fmt: OutputFormat, started: float) -> Response:
        query = Query(request.app.state.engine, body.sql, body.params, section.query_timeout_secs)
        if fmt == "json":
            result = await anyio.to_thread.run_sync(_run_json, query, body.max_rows, limiter=limiter)
            result["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            return Response(dumps(result), media_type=MEDIA_TYPES[fmt])
        try:
            await anyio.to_thread.run_sync(query.start, limiter=limiter)
            chunks = await anyio.to_thread.run_sync(stream_result, query, fmt, limiter=limiter)
        except BaseException:
            query.close()
            raise
        # From here the stream owns the query and closes it when it ends, fails or the client goes away.
        return StreamingResponse(_drain(chunks, query, limiter), media_type=MEDIA_TYPES[fmt])

    async def datasets(request: Request) -> JSONResponse:
        return JSONResponse(_views(request.app.state.engine))

    async def refresh(request: Request) -> JSONResponse:
        try:
            await request.app.state.refresher.refresh(force=True)
        except RemoteError as exc:
            raise exc.to_lakehouse_error() from None
        return JSONResponse(_views(request.app.state.engine))

    routes = [
        Route("/v1/sql", sql, methods=["POST"]),
        Route("/v1/sql/datasets", datasets, methods=["GET"]),
        Route("/v1/sql/refresh", refresh, methods=["POST"]),
    ]
    return service_app("queryd", config, routes, lifespan=lifespan)


def _views(engine: Engine) -> dict[str, Any]:
    views = sorted(engine.views.values(), key=lambda v: v.name)
    return {"datasets": [{"name": v.name, "version": v.version, "files": len(v.files)} for v in views]}


# How old the views may be when a query starts: an engine's commit (an Iceberg append, an ingest) is seen within it.
FRESH_SECS = 1.0

# `curl -d '{"sql": ...}'` sends this type; SQL here is read-only, so taking it costs no cross-site write.
CURL_DEFAULT = "application/x-www-form-urlencoded"


async def _sql_request(request: Request) -> SqlRequest:
    return await read_json(request, SqlRequest, max_bytes=MAX_SQL_BODY, also_accept=frozenset({CURL_DEFAULT}))


async def _refreshed(refresher: ViewRefresher) -> bool:
    try:
        return await refresher.refresh()
    except RemoteError:
        return False  # catalogd down: the original error stands


def _run_json(query: Query, max_rows: int) -> dict[str, Any]:
    # One hop to the worker thread for the whole small-result path, closing the cursor included (DuckDB work that
    # would otherwise run on the event loop).
    try:
        query.start()
        return json_result(query, max_rows)
    finally:
        query.close()


def _next(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


async def _drain(chunks: Iterator[bytes], query: Query, limiter: anyio.CapacityLimiter) -> AsyncIterator[bytes]:
    """The streamed body; an error mid-stream propagates, so the server aborts the response (never truncated)."""
    try:
        while (chunk := await anyio.to_thread.run_sync(_next, chunks, limiter=limiter)) is not None:
            if chunk:
                yield chunk
    finally:
        query.close()
