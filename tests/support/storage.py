"""The data plane's ground for tests: an S3-compatible server, storaged on either backend, catalogd on top.

- `s3_server` (session): moto's S3 server on a free loopback port; `s3` (per test): that server wiped, with the
  bucket created, as the `[s3]` config section to pass on.
- `storaged` (per test, parametrized over "local" and "s3"): storaged on a real port against that backend, with
  `max_put_bytes` = TEST_MAX_PUT_BYTES (16 MiB) unless a test builds its own config.
- `storaged_local`: the same, local backend only (for tests that need no S3).
- `catalogd`: catalogd on a real port, on top of a local-backend storaged.
- `start_storaged(config)` / `start_catalogd(config, storaged_url)`: the same as async context managers, for
  tests that need several, a restart, or their own config.

    async def test_something(storaged: StoragedService) -> None:
        async with StoragedClient(storaged.url) as client:
            await client.put("a/b", b"x")
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import obstore
import pytest
from moto.server import ThreadedMotoServer
from obstore.store import S3Store

from services.catalogd.app import create_app as create_catalogd
from services.storaged.app import create_app as create_storaged
from shared.config import LakehouseConfig, load_config
from tests.support.servers import run_server

BUCKET = "lakehouse-primary"
BACKENDS = ["local", "s3"]
# The fixtures' PUT cap: big enough for any test object, small enough that a 413 test streams little.
TEST_MAX_PUT_BYTES = 16 << 20


@dataclass
class S3Server:
    """A running S3-compatible server: `section` is the `[s3]` config pointing at it."""

    endpoint: str

    @property
    def section(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "region": "us-east-1",
            "bucket": BUCKET,
            "access_key_id": "test-key",
            "secret_access_key": "test-secret",
            "use_path_style": True,
        }

    def reset(self, *, bucket: bool = True) -> None:
        """Wipe every bucket and object; create the lakehouse bucket again unless `bucket` is False."""
        httpx.post(f"{self.endpoint}/moto-api/reset").raise_for_status()
        if bucket:
            httpx.put(f"{self.endpoint}/{BUCKET}").raise_for_status()


@dataclass
class StoragedService:
    url: str
    config: LakehouseConfig
    backend: str
    root: Path | None  # the local backend's directory


@dataclass
class CatalogdService:
    url: str
    config: LakehouseConfig
    storaged: StoragedService


def storaged_config(backend: str, *, root: Path, s3: S3Server | None = None, **storaged: Any) -> LakehouseConfig:
    """The config of a storaged on `backend` ("local": under `root`; "s3": the server's bucket)."""
    storaged.setdefault("max_put_bytes", TEST_MAX_PUT_BYTES)
    sections: dict[str, Any] = {"storaged": {"backend": backend, "root": str(root), **storaged}}
    if backend == "s3":
        assert s3 is not None, "the s3 backend needs an S3Server"
        sections["s3"] = s3.section
    return load_config(**sections)


async def seed_objects(service: StoragedService, objects: dict[str, bytes]) -> None:
    """Store many objects fast, behind storaged's back (files under root / direct PUTs to the S3 server), for tests
    about reading and listing that need thousands of keys without thousands of fsyncs."""
    if service.root is not None:
        root = service.root

        def write() -> None:
            for key, data in objects.items():
                path = root / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

        await asyncio.to_thread(write)
        return
    s3 = service.config.s3
    store = S3Store(
        s3.bucket,
        endpoint=s3.endpoint,
        region=s3.region,
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key.get_secret_value(),
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )
    gate = asyncio.Semaphore(32)

    async def put(key: str, data: bytes) -> None:
        async with gate:
            await obstore.put_async(store, key, data, use_multipart=False)

    await asyncio.gather(*(put(k, v) for k, v in objects.items()))


@asynccontextmanager
async def start_storaged(config: LakehouseConfig) -> AsyncIterator[str]:
    """storaged on a free loopback port (lifespan included); yields its base URL."""
    async with run_server(create_storaged(config)) as url:
        yield url


@asynccontextmanager
async def start_catalogd(config: LakehouseConfig, storaged_url: str) -> AsyncIterator[str]:
    """catalogd on a free loopback port, persisting through the storaged at `storaged_url`; yields its base URL."""
    config = config.model_copy(update={"catalogd": config.catalogd.model_copy(update={"storaged_url": storaged_url})})
    async with run_server(create_catalogd(config)) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server) -> S3Server:
    s3_server.reset()
    return s3_server


@pytest.fixture(params=BACKENDS)
async def storaged(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoragedService]:
    backend: str = request.param
    s3 = request.getfixturevalue("s3") if backend == "s3" else None
    root = tmp_path / "objects"
    config = storaged_config(backend, root=root, s3=s3)
    async with start_storaged(config) as url:
        yield StoragedService(url, config, backend, root if backend == "local" else None)


@pytest.fixture
async def storaged_local(tmp_path: Path) -> AsyncIterator[StoragedService]:
    root = tmp_path / "objects"
    config = storaged_config("local", root=root)
    async with start_storaged(config) as url:
        yield StoragedService(url, config, "local", root)


@pytest.fixture
async def catalogd(storaged_local: StoragedService) -> AsyncIterator[CatalogdService]:
    async with start_catalogd(storaged_local.config, storaged_local.url) as url:
        yield CatalogdService(url, storaged_local.config, storaged_local)
