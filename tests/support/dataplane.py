"""The whole data plane on loopback for ingestd's and queryd's tests: storaged (local or S3 backend), catalogd,
ingestd and queryd, each a real server on a free port, wired to each other as in production.

    async with data_plane(tmp_path, ingestd={"max_ingest_bytes": 1 << 20}) as plane:
        await plane.http.post(f"{plane.ingestd}/v1/ingest/trips", content=b"a,b\\n1,2\\n")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.catalogd.client import CatalogdClient, CatalogError
from services.ingestd.app import create_app as create_ingestd
from services.queryd.app import create_app as create_queryd
from services.storaged.client import StoragedClient
from shared.config import LakehouseConfig, load_config
from tests.support.servers import run_servers
from tests.support.storage import S3Server, start_catalogd, start_storaged


@dataclass
class DataPlane:
    config: LakehouseConfig
    storaged: str
    catalogd: str
    ingestd: str
    queryd: str
    root: Path | None
    http: httpx.AsyncClient
    storage: StoragedClient
    catalog: CatalogdClient

    async def objects(self, prefix: str = "datasets/") -> list[str]:
        """Every data object storaged holds (manifests under _catalog/ and each table's Iceberg files under
        <dataset>/metadata/ are catalogd's business)."""
        return [info.key async for info in self.storage.iter_objects(prefix) if "/metadata/" not in info.key]

    async def registered(self, name: str) -> bool:
        try:
            await self.catalog.get_manifest(name)
        except CatalogError as exc:
            if exc.code == "not_found":
                return False
            raise
        return True

    async def ingest(self, name: str, data: bytes, query: str = "", **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {"content-type": "text/csv"})
        url = f"{self.ingestd}/v1/ingest/{name}" + (f"?{query}" if query else "")
        return await self.http.post(url, content=data, headers=headers, **kwargs)

    async def sql(self, sql: str, *, accept: str = "application/json", **fields: Any) -> httpx.Response:
        return await self.http.post(f"{self.queryd}/v1/sql", json={"sql": sql, **fields}, headers={"accept": accept})


def plane_config(tmp_path: Path, backend: str, s3: S3Server | None, **sections: dict[str, Any]) -> LakehouseConfig:
    overrides: dict[str, Any] = {
        "storaged": {"backend": backend, "root": str(tmp_path / "objects"), "max_put_bytes": 256 << 20},
        "ingestd": {"temp_dir": str(tmp_path), **sections.pop("ingestd", {})},
        "queryd": {"refresh_every": "1h", **sections.pop("queryd", {})},
        **sections,
    }
    if s3 is not None:
        overrides["s3"] = s3.section
    return load_config(**overrides)


@asynccontextmanager
async def data_plane(
    tmp_path: Path,
    *,
    backend: str = "local",
    s3: S3Server | None = None,
    catalogd_url: str | None = None,
    **sections: dict[str, Any],
) -> AsyncIterator[DataPlane]:
    """The four services; `catalogd_url` points ingestd and queryd somewhere else (e.g. a closed port)."""
    config = plane_config(tmp_path, backend, s3, **sections)
    async with AsyncExitStack() as stack:
        storaged = await stack.enter_async_context(start_storaged(config))
        catalogd = await stack.enter_async_context(start_catalogd(config, storaged))
        used_catalogd = catalogd_url or catalogd
        config = config.model_copy(
            update={
                "ingestd": config.ingestd.model_copy(update={"storaged_url": storaged, "catalogd_url": used_catalogd}),
                "queryd": config.queryd.model_copy(update={"catalogd_url": used_catalogd}),
            }
        )
        ingestd, queryd = await stack.enter_async_context(run_servers([create_ingestd(config), create_queryd(config)]))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=120))
        storage = await stack.enter_async_context(StoragedClient(storaged))
        catalog = await stack.enter_async_context(CatalogdClient(catalogd))
        root = Path(config.storaged.root) if backend == "local" else None
        yield DataPlane(config, storaged, catalogd, ingestd, queryd, root, http, storage, catalog)
