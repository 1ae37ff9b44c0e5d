"""The REST catalog's routes (apache/iceberg open-api/rest-catalog-open-api.yaml) under /v1/iceberg.

A client's catalog URI is `http://<gateway>/v1/iceberg`; it calls `…/v1/config`, `…/v1/namespaces/{ns}/tables/{t}`,
… A multi-level namespace travels joined by the unit separator (%1F), as the spec says. Multi-table transactions
(`POST /v1/transactions/commit`) answer 501: each table's versions are their own conditional PUTs, so a commit
across tables cannot be all-or-nothing here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyiceberg.table.metadata import TableMetadata
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.catalogd.iceberg.errors import Endpoint, IcebergError, bad_request, no_such_table, speaks_iceberg
from services.catalogd.iceberg.namespaces import (
    LAKEHOUSE,
    Namespace,
    Namespaces,
    check_namespace,
    dataset_name,
    split_dataset,
)
from services.catalogd.iceberg.requests import (
    CommitTable,
    CreateNamespace,
    CreateTable,
    RegisterTable,
    RenameTable,
    UpdateProperties,
)
from services.catalogd.iceberg.tables import Tables
from shared.web.body import read_json
from shared.web.iceberg_errors import ICEBERG_PREFIX

MAX_BODY = 16 << 20
SEPARATOR = "\x1f"
DEFAULT_PAGE = 1000

# What this catalog serves, as the spec's `endpoints` list names them (clients check it before calling).
ENDPOINTS = (
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/register",
    "POST /v1/{prefix}/tables/rename",
)


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status, media_type="application/json")


def _namespace(request: Request) -> Namespace:
    raw: str = request.path_params["namespace"]
    return check_namespace(raw.split(SEPARATOR))


def _page(request: Request, names: Sequence[str]) -> tuple[list[str], str | None]:
    """One page of sorted `names` after the pageToken (the last name of the page before)."""
    token = request.query_params.get("pageToken") or ""
    raw_size = request.query_params.get("pageSize") or str(DEFAULT_PAGE)
    if not raw_size.isdigit() or int(raw_size) < 1:
        raise bad_request(f"pageSize must be a positive integer, got {raw_size[:40]!r}")
    rest = [n for n in sorted(names) if n > token]
    page = rest[: int(raw_size)]
    return page, (page[-1] if len(rest) > len(page) else None)


def _table_result(location: str | None, metadata: TableMetadata, snapshots: str = "all") -> Response:
    if snapshots == "refs":
        referenced = {ref.snapshot_id for ref in metadata.refs.values()}
        metadata = metadata.model_copy(
            update={"snapshots": [s for s in metadata.snapshots if s.snapshot_id in referenced]}
        )
    result = '{"metadata": ' + metadata.model_dump_json() + ', "config": {}'
    if location is not None:
        result += ', "metadata-location": ' + json.dumps(location)
    return Response(result + "}", media_type="application/json")


@dataclass(frozen=True, slots=True)
class Iceberg:
    tables: Tables
    namespaces: Namespaces


def iceberg_routes(iceberg: Callable[[], Iceberg], overrides: dict[str, str]) -> list[BaseRoute]:
    """The routes; `iceberg()` gives the tables and namespaces they serve (made when the app starts)."""

    async def implied() -> set[Namespace]:
        """Namespaces that exist without an object of their own: the parents of stored ones, and those some table
        is in (and their parents)."""
        found: set[Namespace] = set()
        for name in await iceberg().tables.catalog.names():
            namespace, _ = split_dataset(name)
            found |= {namespace[:i] for i in range(1, len(namespace) + 1)}
        for namespace in await iceberg().namespaces.stored():
            found |= {namespace[:i] for i in range(1, len(namespace))}
        return found

    async def tables_in(namespace: Namespace) -> list[str]:
        return [t for n, t in map(split_dataset, await iceberg().tables.catalog.names()) if n == namespace]

    async def existing(namespace: Namespace) -> None:
        await iceberg().namespaces.properties(namespace, await implied())

    async def config(request: Request) -> Response:
        return _json({"defaults": {}, "overrides": overrides, "endpoints": list(ENDPOINTS)})

    async def list_namespaces(request: Request) -> Response:
        raw = request.query_params.get("parent")
        parent = check_namespace(raw.split(SEPARATOR)) if raw else ()
        every = {(LAKEHOUSE,), *await iceberg().namespaces.stored(), *await implied()}
        if parent:
            await existing(parent)
        children = {n[: len(parent) + 1] for n in every if len(n) > len(parent) and n[: len(parent)] == parent}
        page, token = _page(request, [SEPARATOR.join(n) for n in children])
        body: dict[str, object] = {"namespaces": [n.split(SEPARATOR) for n in page]}
        if token is not None:
            body["next-page-token"] = token
        return _json(body)

    async def create_namespace(request: Request) -> Response:
        body = await read_json(request, CreateNamespace, max_bytes=MAX_BODY)
        namespace = check_namespace(body.namespace)
        await iceberg().namespaces.create(namespace, body.properties, await implied())
        return _json({"namespace": list(namespace), "properties": body.properties})

    async def load_namespace(request: Request) -> Response:
        namespace = _namespace(request)
        properties = await iceberg().namespaces.properties(namespace, await implied())
        return _json({"namespace": list(namespace), "properties": properties})

    async def namespace_exists(request: Request) -> Response:
        try:
            await existing(_namespace(request))
        except IcebergError as exc:
            return Response(status_code=exc.status)
        return Response(status_code=204)

    async def drop_namespace(request: Request) -> Response:
        namespace = _namespace(request)
        if namespace in await implied():
            raise IcebergError(409, "NamespaceNotEmptyException", f"Namespace {'.'.join(namespace)} is not empty")
        if namespace == (LAKEHOUSE,):
            raise bad_request("namespace lakehouse holds the datasets: it always exists")
        stored = await iceberg().namespaces.stored()
        if any(len(n) > len(namespace) and n[: len(namespace)] == namespace for n in stored):
            raise IcebergError(409, "NamespaceNotEmptyException", f"Namespace {'.'.join(namespace)} has namespaces")
        await iceberg().namespaces.drop(namespace)
        return Response(status_code=204)

    async def update_properties(request: Request) -> Response:
        namespace = _namespace(request)
        body = await read_json(request, UpdateProperties, max_bytes=MAX_BODY)
        updated, removed, missing = await iceberg().namespaces.update(
            namespace, body.removals, body.updates, await implied()
        )
        return _json({"updated": updated, "removed": removed, "missing": missing})

    async def list_tables(request: Request) -> Response:
        namespace = _namespace(request)
        await existing(namespace)
        page, token = _page(request, await tables_in(namespace))
        body: dict[str, object] = {"identifiers": [{"namespace": list(namespace), "name": t} for t in page]}
        if token is not None:
            body["next-page-token"] = token
        return _json(body)

    async def create_table(request: Request) -> Response:
        namespace = _namespace(request)
        body = await read_json(request, CreateTable, max_bytes=MAX_BODY)
        name = dataset_name(namespace, body.name)
        await existing(namespace)
        location, metadata = await iceberg().tables.create(namespace, name, body)
        return _table_result(location, metadata)

    async def register_table(request: Request) -> Response:
        namespace = _namespace(request)
        body = await read_json(request, RegisterTable, max_bytes=MAX_BODY)
        name = dataset_name(namespace, body.name)
        await existing(namespace)
        return _table_result(*await iceberg().tables.register(name, body.metadata_location))

    def _table(request: Request) -> str:
        return dataset_name(_namespace(request), request.path_params["table"])

    async def load_table(request: Request) -> Response:
        snapshots = request.query_params.get("snapshots", "all")
        if snapshots not in ("all", "refs"):
            raise bad_request(f"snapshots must be all or refs, got {snapshots[:40]!r}")
        return _table_result(*await iceberg().tables.load(_table(request)), snapshots=snapshots)

    async def table_exists(request: Request) -> Response:
        try:
            await iceberg().tables.load(_table(request))
        except IcebergError as exc:
            return Response(status_code=exc.status)
        return Response(status_code=204)

    async def commit_table(request: Request) -> Response:
        name = _table(request)
        body = await read_json(request, CommitTable, max_bytes=MAX_BODY)
        location, metadata = await iceberg().tables.commit(name, list(body.requirements), list(body.updates))
        return Response(
            '{"metadata-location": ' + json.dumps(location) + ', "metadata": ' + metadata.model_dump_json() + "}",
            media_type="application/json",
        )

    async def drop_table(request: Request) -> Response:
        name = _table(request)
        purge = request.query_params.get("purgeRequested", "false").lower() == "true"
        if await iceberg().tables.catalog.current(name) is None:
            raise no_such_table(name)
        await iceberg().tables.catalog.delete(name, purge=purge)
        return Response(status_code=204)

    async def rename_table(request: Request) -> Response:
        body = await read_json(request, RenameTable, max_bytes=MAX_BODY)
        source = dataset_name(check_namespace(body.source.namespace), body.source.name)
        destination_namespace = check_namespace(body.destination.namespace)
        destination = dataset_name(destination_namespace, body.destination.name)
        if await iceberg().tables.catalog.current(source) is None:
            raise no_such_table(source)
        await existing(destination_namespace)
        if await iceberg().tables.catalog.current(destination) is not None:
            raise IcebergError(409, "AlreadyExistsException", f"Table {destination} already exists")
        await iceberg().tables.catalog.rename(source, destination)
        return Response(status_code=204)

    async def transactions(request: Request) -> Response:
        raise IcebergError(
            501,
            "NotImplementedException",
            "multi-table transactions are not supported: commit each table on its own "
            "(POST /v1/namespaces/{namespace}/tables/{table})",
        )

    base = ICEBERG_PREFIX + "/v1"
    table = base + "/namespaces/{namespace}/tables/{table}"
    rows: list[tuple[str, Endpoint, str]] = [
        (base + "/config", config, "GET"),
        (base + "/namespaces", list_namespaces, "GET"),
        (base + "/namespaces", create_namespace, "POST"),
        (base + "/namespaces/{namespace}", load_namespace, "GET"),
        (base + "/namespaces/{namespace}", namespace_exists, "HEAD"),
        (base + "/namespaces/{namespace}", drop_namespace, "DELETE"),
        (base + "/namespaces/{namespace}/properties", update_properties, "POST"),
        (base + "/namespaces/{namespace}/tables", list_tables, "GET"),
        (base + "/namespaces/{namespace}/tables", create_table, "POST"),
        (base + "/namespaces/{namespace}/register", register_table, "POST"),
        (table, load_table, "GET"),
        (table, table_exists, "HEAD"),
        (table, commit_table, "POST"),
        (table, drop_table, "DELETE"),
        (base + "/tables/rename", rename_table, "POST"),
        (base + "/transactions/commit", transactions, "POST"),
    ]
    # One Route per path, all its methods: Starlette answers a known path with a wrong method 405, not 404.
    by_path: dict[str, dict[str, Endpoint]] = {}
    for path, handler, method in rows:
        by_path.setdefault(path, {})[method] = handler
    return [_dispatch(path, handlers) for path, handlers in by_path.items()]


def _dispatch(path: str, handlers: dict[str, Endpoint]) -> Route:
    wrapped = {method: speaks_iceberg(handler) for method, handler in handlers.items()}

    async def endpoint(request: Request) -> Response:
        # Starlette routes HEAD wherever GET is; a path with no HEAD of its own answers it as GET.
        handler = wrapped.get(request.method) or wrapped["GET"]
        return await handler(request)

    return Route(path, endpoint, methods=list(wrapped))
