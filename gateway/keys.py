"""`/v1/keys`: client keys, made and managed at the gateway (the root token, or a key with scope `admin`).

A key's secret is in the answer that makes or rotates it and nowhere else, ever: storaged holds its salted hash,
listings and logs its id and name. Keys need `[auth] token` (with auth off every request is let in anyway).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.keys.gate import KeyGate, requests_meter, rpm_meter
from shared.keys.grant import GRANT_HEADER, encode
from shared.keys.records import ID_PATTERN, KeyRecord, KeyTerms, budget_window, issue
from shared.keys.scopes import ScopeTable
from shared.web.body import describe_validation, read_capped

KEYS = "/v1/keys"
MAX_BODY = 64 << 10
CHAT_USAGE = "/v1/chat/usage"  # chatd's: a key's tokens and spend, the grant in the header

ChatUsage = Callable[[KeyRecord], Awaitable[dict[str, Any] | None]]


def _id(request: Request) -> str:
    key_id: str = request.path_params["id"]
    if not ID_PATTERN.fullmatch(key_id):
        raise LakehouseError("not_found", f"no key {key_id[:40]!r}")
    return key_id


def usage_of_chat(config: LakehouseConfig) -> ChatUsage:
    """Asks chatd for a key's tokens and spend this period; None when chatd is turned off, `{"error"}` when it does
    not answer."""
    url = config.gateway.upstream_url("chatd")
    token = config.auth.token.get_secret_value()

    async def usage(record: KeyRecord) -> dict[str, Any] | None:
        if not url:
            return None
        headers = {"authorization": f"Bearer {token}", GRANT_HEADER: encode(record.grant()).decode()}
        try:
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                response = await http.get(CHAT_USAGE, headers=headers)
        except httpx.HTTPError as exc:
            return {"error": f"chatd did not answer: {exc}"}  # the requests part stands; the chat part says why not
        if response.status_code != 200:
            return {"error": f"chatd answered {response.status_code}"}
        answer: dict[str, Any] = response.json()
        return answer

    return usage


def key_routes(gate: Callable[[], KeyGate | None], table: ScopeTable, chat_usage: ChatUsage) -> list[Route]:
    def keys() -> KeyGate:
        found = gate()
        if found is None:
            raise LakehouseError(
                "invalid_request", "client keys need [auth] token set (and the gateway's storaged_url)"
            )
        return found

    def terms_of(body: bytes) -> KeyTerms:
        try:
            terms = KeyTerms.model_validate_json(body)
        except ValidationError as exc:
            raise LakehouseError("invalid_request", describe_validation(exc)) from None
        unknown = sorted(set(terms.scopes) - table.valid)
        if unknown:
            raise LakehouseError(
                "invalid_request", f"scopes: unknown {', '.join(unknown)}; valid: {', '.join(sorted(table.valid))}"
            )
        return terms

    async def stored(key_id: str) -> tuple[KeyRecord, str]:
        found = await keys().cache.store.get(key_id)
        if found is None:
            raise LakehouseError("not_found", f"no key {key_id}")
        return found

    async def create(request: Request) -> Response:
        cache = keys().cache
        record, secret = issue(terms_of(await read_capped(request, MAX_BODY)), sealer=keys().sealer)
        await cache.store.put(record)
        cache.remember(record)
        return JSONResponse({**record.public(), "secret": secret}, status_code=201)

    async def listing(request: Request) -> Response:
        cache = keys().cache
        await cache.refresh()
        return JSONResponse({"keys": [r.public() for r in sorted(cache, key=lambda r: (r.created_at, r.id))]})

    async def show(request: Request) -> Response:
        record, _ = await stored(_id(request))
        return JSONResponse(record.public())

    async def revoke(request: Request) -> Response:
        cache = keys().cache
        key_id = _id(request)
        if not await cache.store.delete(key_id):
            raise LakehouseError("not_found", f"no key {key_id}")
        cache.forget(key_id)
        return Response(status_code=204)

    async def rotate(request: Request) -> Response:
        cache = keys().cache
        old, etag = await stored(_id(request))
        terms = KeyTerms.model_validate(old.model_dump(include=set(KeyTerms.model_fields)))
        record, secret = issue(terms, key_id=old.id, sealer=keys().sealer)
        record = record.model_copy(update={"created_at": old.created_at})
        await cache.store.put(record, replacing=etag)
        cache.remember(record)
        return JSONResponse({**record.public(), "secret": secret})

    async def usage(request: Request) -> Response:
        record, _ = await stored(_id(request))
        meters = keys().meters()
        now = time.time()
        start, end = budget_window(record.budget_period, now)
        per_minute = None
        if record.rpm is not None:
            per_minute = round(record.rpm - meters.level(rpm_meter(record.id), record.rpm, now), 3)
        answer: dict[str, Any] = {
            "id": record.id,
            "name": record.name,
            "period": record.budget_period,
            "period_start": _iso(start),
            "period_end": _iso(end),
            "requests": {
                "in_period": int(meters.total(requests_meter(record.id), start)),
                "this_minute": per_minute,
                "rpm": record.rpm,
            },
            "chat": await chat_usage(record),
        }
        return JSONResponse(answer)

    return [
        Route(KEYS, create, methods=["POST"]),
        Route(KEYS, listing, methods=["GET"]),
        Route(KEYS + "/{id}", show, methods=["GET"]),
        Route(KEYS + "/{id}", revoke, methods=["DELETE"]),
        Route(KEYS + "/{id}/rotate", rotate, methods=["POST"]),
        Route(KEYS + "/{id}/usage", usage, methods=["GET"]),
    ]


def _iso(timestamp: float) -> str | None:
    if timestamp in (0.0, float("inf")):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
