"""storaged: objects by key over HTTP, on the local directory or an S3 bucket."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.storaged.backends import build_backend
from services.storaged.backends.base import DEFAULT_CONTENT_TYPE, Backend, Precondition
from services.storaged.keys import check_key, check_prefix
from services.storaged.ranges import resolve_range
from services.storaged.responses import ObjectResponse, object_headers
from services.storaged.schemas import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, ObjectInfo, ObjectList, PutResult
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.server.startup import StartupErrorMiddleware
from shared.telemetry.metrics import Metrics, StorageMetrics
from shared.web.app import service_app
from shared.web.body import capped_stream
from shared.web.etags import etag_matches

OBJECTS = "/v1/storage/objects"


def _precondition(request: Request) -> Precondition:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise LakehouseError("invalid_request", "a PUT supports only If-None-Match: * (create only)")
    return Precondition(if_none_match=if_none_match is not None, if_match=request.headers.get("if-match"))


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_LIST_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise LakehouseError(
            "invalid_request", f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {raw[:40]!r}"
        )
    return int(raw)


def _key_route(endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]) -> Route:
    route = Route(OBJECTS + "/{key:path}", endpoint, methods=methods)
    # `.` stops at a newline: without DOTALL a key with one would be a 404 instead of the 400 naming the rule.
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


def create_app(config: LakehouseConfig) -> Starlette:
    backend: Backend = build_backend(config)
    max_put_bytes = config.storaged.max_put_bytes

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        try:
            yield
        finally:
            await backend.close()

    metrics = Metrics("storaged")
    storage_metrics = StorageMetrics(metrics, backend=config.storaged.backend)

    async def put_object(request: Request) -> Response:
        key = check_key(request.path_params["key"])
        precondition = _precondition(request)
        content_type = request.headers.get("content-type") or DEFAULT_CONTENT_TYPE
        info = await backend.put(
            key, capped_stream(request, max_put_bytes), content_type=content_type, precondition=precondition
        )
        storage_metrics.received(info.size)
        body = PutResult(key=key, size=info.size, etag=info.etag)
        return JSONResponse(body.model_dump(), status_code=201, headers={"etag": info.etag})

    async def get_object(request: Request) -> Response:
        key = check_key(request.path_params["key"])
        handle = await backend.open(key)
        try:
            info = handle.info
            if_none_match = request.headers.get("if-none-match")
            if if_none_match is not None and etag_matches(if_none_match, info.etag):
                headers = object_headers(info)
                del headers["content-type"]
                await handle.aclose()
                return Response(status_code=304, headers=headers)
            if_range = request.headers.get("if-range")
            wants_range = if_range is None or if_range.strip() == info.etag
            span = resolve_range(request.headers.get("range"), info.size) if wants_range else None
        except BaseException:
            await handle.aclose()
            raise
        return ObjectResponse(handle, span, sent=storage_metrics.sent)

    async def delete_object(request: Request) -> Response:
        await backend.delete(check_key(request.path_params["key"]))
        return Response(status_code=204)

    async def list_objects(request: Request) -> Response:
        prefix = check_prefix(request.query_params.get("prefix", ""))
        after = request.query_params.get("after") or None
        if after is not None:
            check_prefix(after, name="after")
        limit = _limit(request)
        found = await backend.list(prefix, after=after, limit=limit + 1)
        page = found[:limit]
        objects = [ObjectInfo(key=o.key, size=o.size, etag=o.etag, last_modified=o.last_modified) for o in page]
        listing = ObjectList(objects=objects, next=page[-1].key if len(found) > limit else None)
        return Response(listing.model_dump_json(), media_type="application/json")

    routes = [
        Route(OBJECTS, list_objects, methods=["GET"]),
        _key_route(get_object, ["GET", "HEAD"]),
        _key_route(put_object, ["PUT"]),
        _key_route(delete_object, ["DELETE"]),
    ]
    return service_app(
        "storaged",
        config,
        routes,
        lifespan=lifespan,
        front=[Middleware(StartupErrorMiddleware, service="storaged")],
        metrics=metrics,
    )
