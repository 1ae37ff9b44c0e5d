"""catalogd: versioned dataset manifests, every byte of them kept in storaged."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.catalogd.catalog import Catalog
from services.catalogd.iceberg.namespaces import Namespaces
from services.catalogd.iceberg.routes import Iceberg, iceberg_routes
from services.catalogd.iceberg.tables import Tables
from services.catalogd.schemas import CommitRequest, DatasetList, VersionList, check_name
from services.catalogd.stored import StoredVersion
from services.storaged.client import StoragedClient
from shared.config import LakehouseConfig
from shared.config.base import split_bind
from shared.errors import LakehouseError
from shared.web.app import service_app
from shared.web.body import read_json
from shared.web.etags import etag_matches
from shared.web.iceberg_errors import IcebergErrorShape

DATASETS = "/v1/catalog/datasets"
MAX_COMMIT_BYTES = 16 << 20  # a commit lists files, not data: even 100k files fit


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    try:
        return check_name(name)
    except ValueError as exc:
        raise LakehouseError("invalid_request", str(exc)) from None


def _json(body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _manifest_json(version: StoredVersion) -> str:
    # A stored version carries its mode too; the wire manifest is exactly the contract's fields.
    return version.model_dump_json(exclude={"mode"})


def create_app(config: LakehouseConfig) -> Starlette:
    settings = config.catalogd
    token = config.auth.token.get_secret_value()
    state: dict[str, Catalog] = {}
    iceberg: dict[str, Iceberg] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with StoragedClient(settings.storaged_url, token=token, internal=True) as storage:
            state["catalog"] = Catalog(storage)
            iceberg["iceberg"] = Iceberg(Tables(state["catalog"], settings.warehouse), Namespaces(storage))
            yield

    def catalog() -> Catalog:
        return state["catalog"]

    async def list_datasets(request: Request) -> Response:
        body = DatasetList(datasets=await catalog().datasets()).model_dump_json(exclude_none=True)
        etag = f'"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and etag_matches(if_none_match, etag):
            return Response(status_code=304, headers={"etag": etag})
        return _json(body, headers={"etag": etag})

    async def get_manifest(request: Request) -> Response:
        return _json(_manifest_json(await catalog().manifest(_name(request))))

    async def list_versions(request: Request) -> Response:
        return _json(VersionList(versions=await catalog().versions(_name(request))).model_dump_json())

    async def get_version(request: Request) -> Response:
        name = _name(request)
        raw: str = request.path_params["version"]
        if not raw.isdigit() or int(raw) < 1:
            raise LakehouseError("invalid_request", f"version must be a positive integer, got {raw[:40]!r}")
        return _json(_manifest_json(await catalog().version(name, int(raw))))

    async def commit(request: Request) -> Response:
        name = _name(request)
        body = await read_json(request, CommitRequest, max_bytes=MAX_COMMIT_BYTES)
        return _json(_manifest_json(await catalog().commit(name, body)), status=201)

    async def delete_dataset(request: Request) -> Response:
        await catalog().delete(_name(request))
        return Response(status_code=204)

    routes = [
        *iceberg_routes(lambda: iceberg["iceberg"], iceberg_overrides(config)),
        Route(DATASETS, list_datasets, methods=["GET"]),
        Route(DATASETS + "/{name}", get_manifest, methods=["GET"]),
        Route(DATASETS + "/{name}", delete_dataset, methods=["DELETE"]),
        Route(DATASETS + "/{name}/versions", list_versions, methods=["GET"]),
        Route(DATASETS + "/{name}/versions/{version}", get_version, methods=["GET"]),
        Route(DATASETS + "/{name}/commits", commit, methods=["POST"]),
    ]
    return service_app("catalogd", config, routes, lifespan=lifespan, outer=[Middleware(IcebergErrorShape)])


def iceberg_overrides(config: LakehouseConfig) -> dict[str, str]:
    """What an engine must set to read and write the tables' files through the lakehouse's S3 API."""
    endpoint = config.catalogd.s3_endpoint
    if not endpoint:
        host, port = split_bind(config.gateway.bind)
        endpoint = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    return {
        "s3.endpoint": endpoint,
        "s3.path-style-access": "true",
        "s3.region": config.s3_api.region,
        "warehouse": config.catalogd.warehouse,
    }
