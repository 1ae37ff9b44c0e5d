"""chatd: POST /v1/chat dispatches to the provider the model string routes to."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.chatd.builder import build_registry
from services.chatd.registry import Registry
from services.chatd.routing import resolve
from services.chatd.types import ChatRequest, ProviderError
from shared.app import service_app
from shared.body import describe_validation
from shared.config import LakehouseConfig
from shared.errors import LakehouseError


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def chat(request: Request) -> JSONResponse:
    registry: Registry = request.app.state.registry
    try:
        chat_request = ChatRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise LakehouseError("invalid_request", describe_validation(exc)) from None
    route = resolve(chat_request.model)
    provider = registry.get(route.provider, chat_request.model)
    log = structlog.get_logger("chatd")
    started = time.perf_counter()
    try:
        completion = await provider.complete(chat_request, route.upstream_model)
    except ProviderError as exc:
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        log.warning("chat", provider=provider.name, model=route.upstream_model, status=exc.code, latency_ms=latency_ms)
        raise
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    log.info(
        "chat",
        provider=provider.name,
        model=route.upstream_model,
        status="ok",
        latency_ms=latency_ms,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
    )
    return OrjsonResponse(
        {
            "provider": provider.name,
            "model": route.upstream_model,
            "content": completion.content,
            "finish_reason": completion.finish_reason,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "latency_ms": latency_ms,
        }
    )


async def providers(request: Request) -> JSONResponse:
    registry: Registry = request.app.state.registry
    return JSONResponse({"providers": registry.listing()})


def create_app(config: LakehouseConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.registry = build_registry(config.chatd, os.environ)
        try:
            yield
        finally:
            await app.state.registry.aclose()

    routes = [
        Route("/v1/chat", chat, methods=["POST"]),
        Route("/v1/chat/providers", providers, methods=["GET"]),
    ]
    return service_app("chatd", config, routes, lifespan=lifespan)
