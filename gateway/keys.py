"""`/v1/keys`: client keys, made and managed at the gateway (the root token, or a key with scope `admin`).

A key's secret is in the answer that makes or rotates it and nowhere else, ever: storaged holds its salted hash,
listings and logs its id and name. Keys need `[auth] token` (with auth off every request is let in anyway).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.errors import LakehouseError
from shared.keys.records import ID_PATTERN, CreateKey, issue
from shared.keys.scopes import ScopeTable
from shared.keys.store import KeyCache
from shared.web.body import describe_validation, read_capped

KEYS = "/v1/keys"
MAX_BODY = 64 << 10


def _id(request: Request) -> str:
    key_id: str = request.path_params["id"]
    if not ID_PATTERN.fullmatch(key_id):
        raise LakehouseError("not_found", f"no key {key_id[:40]!r}")
    return key_id


def key_routes(cache: Callable[[], KeyCache | None], table: ScopeTable) -> list[Route]:
    def keys() -> KeyCache:
        found = cache()
        if found is None:
            raise LakehouseError(
                "invalid_request", "client keys need [auth] token set (and the gateway's storaged_url)"
            )
        return found

    async def create(request: Request) -> Response:
        store = keys()
        try:
            body = CreateKey.model_validate_json(await read_capped(request, MAX_BODY))
        except ValidationError as exc:
            raise LakehouseError("invalid_request", describe_validation(exc)) from None
        unknown = sorted(set(body.scopes) - table.valid)
        if unknown:
            raise LakehouseError(
                "invalid_request", f"scopes: unknown {', '.join(unknown)}; valid: {', '.join(sorted(table.valid))}"
            )
        record, secret = issue(body.name, sorted(set(body.scopes)), body.expires_at)
        await store.store.put(record)
        store.remember(record)
        return JSONResponse({**record.public(), "secret": secret}, status_code=201)

    async def listing(request: Request) -> Response:
        store = keys()
        await store.refresh()
        return JSONResponse({"keys": [r.public() for r in sorted(store, key=lambda r: (r.created_at, r.id))]})

    async def show(request: Request) -> Response:
        found = await keys().store.get(_id(request))
        if found is None:
            raise LakehouseError("not_found", f"no key {request.path_params['id']}")
        return JSONResponse(found[0].public())

    async def revoke(request: Request) -> Response:
        store = keys()
        key_id = _id(request)
        if not await store.store.delete(key_id):
            raise LakehouseError("not_found", f"no key {key_id}")
        store.forget(key_id)
        return Response(status_code=204)

    async def rotate(request: Request) -> Response:
        store = keys()
        key_id = _id(request)
        found = await store.store.get(key_id)
        if found is None:
            raise LakehouseError("not_found", f"no key {key_id}")
        old, etag = found
        record, secret = issue(old.name, old.scopes, old.expires_at, key_id=old.id)
        record = record.model_copy(update={"created_at": old.created_at})
        await store.store.put(record, replacing=etag)
        store.remember(record)
        return JSONResponse({**record.public(), "secret": secret})

    return [
        Route(KEYS, create, methods=["POST"]),
        Route(KEYS, listing, methods=["GET"]),
        Route(KEYS + "/{id}", show, methods=["GET"]),
        Route(KEYS + "/{id}", revoke, methods=["DELETE"]),
        Route(KEYS + "/{id}/rotate", rotate, methods=["POST"]),
    ]
