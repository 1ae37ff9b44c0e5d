"""chatd: POST /v1/chat (native) and POST /v1/chat/completions (OpenAI) dispatch to the provider a model routes to."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.chatd.accounts import Accounts, grant_of, running_accounts
from services.chatd.builder import build_registry
from services.chatd.call import Call, routed_headers
from services.chatd.disconnect import CLIENT_CLOSED, ClientGone, StreamResponse
from services.chatd.dispatch import Dispatcher
from services.chatd.metrics import ProviderMetrics
from services.chatd.models import model_list
from services.chatd.native import native_body
from services.chatd.openai_api import CompletionsRequest, completion_body, error_payload
from services.chatd.registry import Registry
from services.chatd.streams import native_stream, openai_stream
from services.chatd.types import ChatError, ChatRequest
from services.chatd.validation import describe
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.keys.grant import GRANT_HEADER
from shared.telemetry.metrics import Metrics
from shared.web.app import service_app
from shared.web.body import is_json_content_type, read_capped
from shared.web.responses import json_response

ModelT = TypeVar("ModelT", bound=BaseModel)


async def read_request(request: Request, model: type[ModelT]) -> ModelT:
    """The body as `model`: 415 if not JSON, 413 past `[chatd] max_request_bytes` (counted while reading), 400 naming
    the field at fault."""
    content_type = request.headers.get("content-type", "")
    if not is_json_content_type(content_type):
        raise ChatError(
            "unsupported_media_type",
            f"expected Content-Type: application/json (or +json), got {content_type[:80] or 'none'}",
        )
    body = await read_capped(request, request.app.state.config.chatd.max_request_bytes)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        message, param = describe(exc)
        raise ChatError("invalid_request", message, param=param) from None


async def chat(request: Request) -> Response:
    chat_request = await read_request(request, ChatRequest)
    call = Call(request, chat_request, "native")
    try:
        if chat_request.stream:
            target, first, rest = await call.open_stream()
            body = native_stream(target, first, rest, totals=call.totals, log=call.log)
            return StreamResponse(body, media_type="application/x-ndjson", headers=routed_headers(target))
        completion = await call.complete()
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    assert call.target is not None
    answer = native_body(
        call.target.provider.name,
        call.target.upstream_model,
        completion.content,
        completion.finish_reason,
        completion.prompt_tokens,
        completion.completion_tokens,
        call.totals.latency_ms,
    )
    return json_response(answer, headers=routed_headers(call.target))


async def completions(request: Request) -> Response:
    try:
        parsed = await read_request(request, CompletionsRequest)
        call = Call(request, parsed.to_chat(), "openai")
        if parsed.stream:
            target, first, rest = await call.open_stream()
            body = openai_stream(
                target, first, rest, include_usage=parsed.include_usage, totals=call.totals, log=call.log
            )
            return StreamResponse(body, media_type="text/event-stream", headers=routed_headers(target))
        completion = await call.complete()
    except ClientGone:
        return Response(status_code=CLIENT_CLOSED)
    except LakehouseError as exc:
        return json_response(error_payload(exc), exc.status, exc.headers)
    assert call.target is not None
    return json_response(completion_body(call.target.routed, completion), headers=routed_headers(call.target))


async def models(request: Request) -> Response:
    config: LakehouseConfig = request.app.state.config
    return json_response(await model_list(config.models, request.app.state.registry))


async def usage(request: Request) -> Response:
    """A key's tokens this minute and spend this period (the gateway's `GET /v1/keys/{id}/usage` asks)."""
    grant = grant_of(request.headers)
    if grant is None:
        raise ChatError("invalid_request", f"usage is a key's: send its grant in {GRANT_HEADER}")
    accounts: Accounts = request.app.state.accounts
    return json_response(accounts.usage(grant))


async def providers(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    return json_response({"providers": registry.listing()})


def create_app(config: LakehouseConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        registry = build_registry(config.chatd, os.environ)
        app.state.registry = registry
        app.state.dispatcher = Dispatcher(
            registry,
            config.models,
            config.chatd.fallbacks,
            config.chatd.call_timeout_secs,
            config.chatd.attempt_timeout_secs,
        )
        try:
            async with running_accounts(config) as accounts:
                app.state.accounts = accounts
                yield
        finally:
            await registry.aclose()

    routes = [
        Route("/v1/chat", chat, methods=["POST"]),
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/v1/chat/providers", providers, methods=["GET"]),
        Route("/v1/chat/usage", usage, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
    metrics = Metrics("chatd")
    app = service_app("chatd", config, routes, lifespan=lifespan, metrics=metrics)
    app.state.provider_metrics = ProviderMetrics(metrics)
    return app
