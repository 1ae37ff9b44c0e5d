"""ingestd's routes: POST /v1/ingest/{dataset} turns a CSV / NDJSON / Parquet upload into a catalogued dataset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.catalogd.client import CatalogdClient
from services.catalogd.schemas import check_name
from services.ingestd.convert import Layout
from services.ingestd.multipart import FilePart, boundary_of
from services.ingestd.options import csv_options, decide_format, parse_options
from services.ingestd.pipeline import Ingest, Source
from services.storaged.client import StoragedClient
from shared.config import LakehouseConfig
from shared.errors import LakehouseError
from shared.upstream.client import RemoteError
from shared.web.app import service_app
from shared.web.body import capped_stream


def create_app(config: LakehouseConfig) -> Starlette:
    section = config.ingestd
    token = config.auth.token.get_secret_value()
    layout = Layout(
        row_group_rows=section.row_group_rows,
        target_file_bytes=section.target_file_bytes,
        directory=section.temp_dir or None,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            StoragedClient(section.storaged_url, token=token) as storage,
            CatalogdClient(section.catalogd_url, token=token) as catalog,
        ):
            app.state.storage = storage
            app.state.catalog = catalog
            yield

    async def ingest(request: Request) -> JSONResponse:
        dataset = request.path_params["dataset"]
        try:
            check_name(dataset)
        except ValueError as exc:
            raise LakehouseError("invalid_request", str(exc)) from None
        options = parse_options(dict(request.query_params))
        content_type = request.headers.get("content-type", "")
        body = capped_stream(request, section.max_ingest_bytes)
        if content_type.partition(";")[0].strip().lower() == "multipart/form-data":
            part = FilePart(body, boundary_of(content_type))
            source = Source(
                part.chunks(),
                lambda: decide_format(options.format, part.content_type, part.filename),
                lambda: csv_options(options, part.filename),
                opened=part.open,
            )
        else:
            source = Source(body, lambda: decide_format(options.format, content_type, None), lambda: options.csv)
        job = Ingest(
            dataset=dataset,
            options=options,
            layout=layout,
            temp_dir=section.temp_dir or None,
            storage=request.app.state.storage,
            catalog=request.app.state.catalog,
        )
        try:
            result = await job.run(source)
        except RemoteError as exc:
            raise exc.to_lakehouse_error() from None
        return JSONResponse(result, status_code=201)

    routes = [Route("/v1/ingest/{dataset}", ingest, methods=["POST"])]
    return service_app("ingestd", config, routes, lifespan=lifespan)
