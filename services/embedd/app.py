"""embedd: text → vectors through Ollama or a built-in model, with an LRU cache in front (POST /v1/embed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.embedd.backend import Backend
from services.embedd.builtin import BUILTIN_MODELS, BUILTIN_PREFIX, BuiltinBackend
from services.embedd.embedder import Embedder
from services.embedd.ollama import OllamaBackend
from services.embedd.openai_api import OpenAIEmbeddingsRequest, check_dimensions, response_body
from services.embedd.routing import Router
from services.embedd.schemas import MAX_BODY_BYTES, EmbedRequest
from shared.config import LakehouseConfig
from shared.config.embedd import EmbeddConfig
from shared.web.app import service_app
from shared.web.body import read_json
from shared.web.responses import json_response


def build_embedder(config: EmbeddConfig) -> Embedder:
    backends: dict[str, Backend] = {"builtin": BuiltinBackend()}
    if config.provider_url:
        backends["ollama"] = OllamaBackend(config.provider_url, timeout_secs=config.timeout_secs)
    return Embedder(Router(backends), cache_size=config.cache_size)


async def embed(request: Request) -> Response:
    embedder: Embedder = request.app.state.embedder
    body = await read_json(request, EmbedRequest, max_bytes=MAX_BODY_BYTES)
    model = body.model or request.app.state.default_model
    result = await embedder.embed(model, body.all_texts())
    return json_response(
        {"model": model, "dimensions": result.dimensions, "embeddings": result.vectors, "cached": result.cached}
    )


async def openai_embeddings(request: Request) -> Response:
    embedder: Embedder = request.app.state.embedder
    body = await read_json(request, OpenAIEmbeddingsRequest, max_bytes=MAX_BODY_BYTES)
    result = await embedder.embed(body.model, body.texts())
    check_dimensions(body, result)
    return json_response(response_body(body, result))


async def models(request: Request) -> Response:
    config: EmbeddConfig = request.app.state.config.embedd
    builtin = [{"name": BUILTIN_PREFIX + s.name, "dimensions": s.dimensions} for s in BUILTIN_MODELS.values()]
    return json_response(
        {"default_model": config.default_model, "builtin": builtin, "ollama_url": config.provider_url or None}
    )


def create_app(config: LakehouseConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.embedder = build_embedder(config.embedd)
        app.state.default_model = config.embedd.default_model
        try:
            yield
        finally:
            await app.state.embedder.aclose()

    routes = [
        Route("/v1/embed", embed, methods=["POST"]),
        Route("/v1/embed/models", models, methods=["GET"]),
        Route("/v1/embeddings", openai_embeddings, methods=["POST"]),
    ]
    return service_app("embedd", config, routes, lifespan=lifespan)
