"""matrixd: one query text or vector searched across several vectord corpora, merged into one top k."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.embedd.client import EmbeddClient, EmbeddError
from services.matrixd.schemas import MAX_BODY_BYTES, SearchRequest
from services.matrixd.search import search
from services.vectord.client import VectordClient
from shared.config import LakehouseConfig
from shared.errors import StartupFailed
from shared.web.app import service_app
from shared.web.body import read_json
from shared.web.responses import json_response


async def search_route(request: Request) -> Response:
    body = await read_json(request, SearchRequest, max_bytes=MAX_BODY_BYTES)
    if body.vector is not None:
        vector = body.vector
    else:
        embedd: EmbeddClient = request.app.state.embedd
        try:
            embedded = await embedd.embed([body.query or ""], model=body.model)
        except EmbeddError as exc:
            raise exc.to_lakehouse_error() from None
        vector = embedded.embeddings[0]
    matches, errors = await search(request.app.state.vectord, body, vector)
    content = {"matches": [m.model_dump() for m in matches], "errors": errors}
    return json_response(content)


def create_app(config: LakehouseConfig) -> Starlette:
    settings = config.matrixd
    token = config.auth.token.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        missing = [key for key in ("embedd_url", "vectord_url") if not getattr(settings, key)]
        if missing:
            raise StartupFailed(
                f"matrixd.{' and matrixd.'.join(missing)} must be set: matrixd cannot search without them"
            )
        async with (
            EmbeddClient(settings.embedd_url, token=token) as app.state.embedd,
            VectordClient(settings.vectord_url, token=token) as app.state.vectord,
        ):
            yield

    routes = [Route("/v1/matrix/search", search_route, methods=["POST"])]
    return service_app("matrixd", config, routes, lifespan=lifespan)
