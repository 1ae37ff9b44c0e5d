"""storaged: objects by key over HTTP, on the local directory or an S3 bucket.

Two routes serve the same handlers. `/v1/storage/objects` is the public API, the one the gateway forwards: it
refuses (403 forbidden) every key inside a reserved prefix (`RESERVED_PREFIXES` in schemas.py: the catalog's, vectord's,
the key store's) and its listings skip them. `/internal/storage/objects` reaches every key; the services that own a
reserved prefix use it over HTTP (`StoragedClient(..., internal=True)`), exactly as on separate boxes.

Why a second route rather than a service credential: the threat model is that the gateway is the only public door,
and it forwards only `/v1/<family>` paths (gateway/proxy.py), so no client request can arrive at `/internal/`
through it. (Outside /v1/ it also forwards S3 requests — signed ones, shared/s3/requests.py — and storaged
answers every one of those with its S3 API before any route is matched, so `/internal/…` there is just a bucket
name.) Whoever reaches storaged directly (it binds loopback, or sits behind `auth.token` and `allowed_ips`)
already holds the root token and could write any object through the public route anyway, so a separate internal
credential would guard nothing that the token does not; the internal route therefore asks for exactly what the
public one does (the auth middleware runs on both). What it must never accept, when scoped keys arrive, is a scoped
key: those are the gateway's, and only the root (service) token belongs here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.storaged.backends import build_backend, part_store
from services.storaged.backends.base import DEFAULT_CONTENT_TYPE, Backend, Precondition
from services.storaged.keys import check_key, check_prefix, check_public_key, check_public_prefix
from services.storaged.metrics import StorageMetrics
from services.storaged.ranges import resolve_range
from services.storaged.responses import ObjectResponse, not_modified
from services.storaged.s3.app import S3Api, S3Door
from services.storaged.s3.client_keys import ClientKeys
from services.storaged.s3.context import S3Context
from services.storaged.s3.expiry import sweep_forever
from services.storaged.schemas import (
    DEFAULT_LIST_LIMIT,
    INTERNAL_OBJECTS,
    MAX_LIST_LIMIT,
    OBJECTS,
    RESERVED_PREFIXES,
    ObjectInfo,
    ObjectList,
    PutResult,
)
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.keys.scopes import scope_table
from shared.keys.sealing import sealer_of
from shared.s3.requests import is_s3_request
from shared.s3.sigv4 import pair
from shared.telemetry.metrics import Metrics
from shared.web.app import service_app
from shared.web.body import capped_stream
from shared.web.etags import etag_matches


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


def _key_route(base: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]) -> Route:
    route = Route(base + "/{key:path}", endpoint, methods=methods)
    # `.` stops at a newline: without DOTALL a key with one would be a 404 instead of the 400 naming the rule.
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


# The wire listing's fields, each read off the backend's StoredObject of the same name.
LISTED_FIELDS = tuple(ObjectInfo.model_fields)


def create_app(config: LakehouseConfig) -> Starlette:
    backend: Backend = build_backend(config)
    max_put_bytes = config.storaged.max_put_bytes

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await backend.start()
        expiry = config.s3_api.upload_expiry_hours
        sweeper = asyncio.create_task(sweep_forever(backend, timedelta(hours=expiry))) if expiry else None
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.cancel()
                with suppress(asyncio.CancelledError):
                    await sweeper
            await backend.close()

    metrics = Metrics("storaged")
    storage_metrics = StorageMetrics(metrics, backend=config.storaged.backend)

    def object_routes(base: str, *, internal: bool) -> list[Route]:
        """The object API at `base`: the internal door reaches every key, the public one none that is reserved."""
        key_of: Callable[[str], str] = check_key if internal else check_public_key
        prefix_of: Callable[[str], str] = check_prefix if internal else check_public_prefix
        exclude = () if internal else tuple(RESERVED_PREFIXES)

        async def put_object(request: Request) -> Response:
            key = key_of(request.path_params["key"])
            precondition = _precondition(request)
            content_type = request.headers.get("content-type") or DEFAULT_CONTENT_TYPE
            info = await backend.put(
                key, capped_stream(request, max_put_bytes), content_type=content_type, precondition=precondition
            )
            storage_metrics.received(info.size)
            body = PutResult(key=key, size=info.size, etag=info.etag)
            return JSONResponse(body.model_dump(), status_code=201, headers={"etag": info.etag})

        async def get_object(request: Request) -> Response:
            key = key_of(request.path_params["key"])
            handle = await backend.open(key)
            try:
                info = handle.info
                if_none_match = request.headers.get("if-none-match")
                if if_none_match is not None and etag_matches(if_none_match, info.etag):
                    await handle.aclose()
                    return not_modified(info)
                if_range = request.headers.get("if-range")
                wants_range = if_range is None or if_range.strip() == info.etag
                span = resolve_range(request.headers.get("range"), info.size) if wants_range else None
            except BaseException:
                await handle.aclose()
                raise
            return ObjectResponse(handle, span, sent=storage_metrics.sent)

        async def delete_object(request: Request) -> Response:
            await backend.delete(key_of(request.path_params["key"]))
            return Response(status_code=204)

        async def list_objects(request: Request) -> Response:
            prefix = prefix_of(request.query_params.get("prefix", ""))
            after = request.query_params.get("after") or None
            if after is not None:
                check_prefix(after, name="after")
            limit = _limit(request)
            found = await backend.list(prefix, after=after, limit=limit + 1, exclude=exclude)
            page = found[:limit]
            objects = [ObjectInfo(**{name: getattr(o, name) for name in LISTED_FIELDS}) for o in page]
            listing = ObjectList(objects=objects, next=page[-1].key if len(found) > limit else None)
            return Response(listing.model_dump_json(), media_type="application/json")

        return [
            Route(base, list_objects, methods=["GET"]),
            _key_route(base, get_object, ["GET", "HEAD"]),
            _key_route(base, put_object, ["PUT"]),
            _key_route(base, delete_object, ["DELETE"]),
        ]

    routes = [*object_routes(OBJECTS, internal=False), *object_routes(INTERNAL_OBJECTS, internal=True)]
    s3_api = config.s3_api
    key_pair = pair(s3_api.access_key_id, s3_api.secret_access_key.get_secret_value()) if s3_api.enabled else None
    client_keys = ClientKeys(backend, sealer_of(config.auth.master_key.get_secret_value()), scope_table())
    s3_context = S3Context(
        backend,
        part_store(backend),
        s3_api.region,
        max_put_bytes,
        received=storage_metrics.received,
        sent=storage_metrics.sent,
    )
    return service_app(
        "storaged",
        config,
        routes,
        lifespan=lifespan,
        front=[
            Middleware(S3Door, s3=S3Api(s3_context, key_pair, client_keys)),
        ],
        metrics=metrics,
        signed=is_s3_request,
    )
