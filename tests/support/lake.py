"""A whole lakehouse on loopback for the engines' tests: storaged (local backend, S3 API on), catalogd, ingestd,
queryd and the gateway in front, each on its own thread, so blocking clients (pyiceberg, DuckDB, Daft, boto3) use
it as they would any other. The gateway's port is chosen first: catalogd tells engines it as their S3 endpoint.

    with running_lake(tmp_path) as lake:
        catalog = lake.pyiceberg()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pyiceberg.catalog.rest import RestCatalog

from gateway.app import create_app as create_gateway
from scripts.net import free_port
from services.catalogd.app import create_app as create_catalogd
from services.chatd.app import create_app as create_chatd
from services.ingestd.app import create_app as create_ingestd
from services.queryd.app import create_app as create_queryd
from services.storaged.app import create_app as create_storaged
from shared.config import LakehouseConfig, load_config
from tests.support.servers import serve_in_thread

ACCESS_KEY = "lakehouse-iceberg-key"
SECRET_KEY = "lakehouse-iceberg-secret-0123456789"
REGION = "us-east-1"
# chatd's keyed providers read no key file of the machine's: Ollama alone serves the lake's chat.
UNREGISTERED = {
    f"{name}_key_file": "/nonexistent/lakehouse-test.env" for name in ("ollama_cloud", "openrouter", "opencode", "kimi")
}


@dataclass
class Lake:
    url: str  # the gateway
    root: Path  # storaged's directory
    config: LakehouseConfig
    token: str = ""

    @property
    def catalog_uri(self) -> str:
        return f"{self.url}/v1/iceberg"

    def s3_properties(self) -> dict[str, str]:
        return {"s3.access-key-id": ACCESS_KEY, "s3.secret-access-key": SECRET_KEY, "s3.region": REGION}

    def pyiceberg(self, **properties: str) -> RestCatalog:
        options = {"uri": self.catalog_uri, **self.s3_properties(), **properties}
        if self.token:
            options.setdefault("token", self.token)
        return RestCatalog("lake", **options)

    def http(self) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def ingest(self, name: str, csv: bytes, mode: str = "append") -> dict[str, Any]:
        with self.http() as http:
            response = http.post(f"/v1/ingest/{name}?mode={mode}", content=csv, headers={"content-type": "text/csv"})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def sql(self, query: str) -> list[dict[str, Any]]:
        with self.http() as http:
            response = http.post("/v1/sql", json={"sql": query})
        assert response.status_code == 200, response.text
        names = [c["name"] for c in response.json()["columns"]]
        return [dict(zip(names, row, strict=True)) for row in response.json()["rows"]]


@contextmanager
def running_lake(
    tmp_path: Path, *, token: str = "", ollama_url: str = "", **sections: dict[str, Any]
) -> Iterator[Lake]:
    """With `ollama_url`, chatd too (its Ollama there, its spend ledger shipped to this lake's storaged)."""
    gateway_port = free_port()
    root = tmp_path / "objects"
    base: dict[str, Any] = {
        "storaged": {"backend": "local", "root": str(root), "max_put_bytes": 256 << 20},
        "s3_api": {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, "region": REGION},
        "ingestd": {"temp_dir": str(tmp_path)},
        "queryd": {"refresh_every": "1h"},
        "auth": {"token": token},
        "gateway": {"bind": f"127.0.0.1:{gateway_port}", "state_dir": str(tmp_path / "gateway")},
        "chatd": {"ledger_dir": str(tmp_path / "ledger"), "ledger_ship_secs": 0.2, **UNREGISTERED},
    }
    for section, values in sections.items():
        base[section] = {**base.get(section, {}), **values}
    config = load_config(**base)
    with ExitStack() as stack:
        storaged = stack.enter_context(serve_in_thread(create_storaged(config)))
        config = _with(config, "catalogd", storaged_url=storaged, s3_endpoint=f"http://127.0.0.1:{gateway_port}")
        catalogd = stack.enter_context(serve_in_thread(create_catalogd(config)))
        config = _with(config, "ingestd", storaged_url=storaged, catalogd_url=catalogd)
        config = _with(config, "queryd", catalogd_url=catalogd)
        ingestd = stack.enter_context(serve_in_thread(create_ingestd(config)))
        queryd = stack.enter_context(serve_in_thread(create_queryd(config)))
        upstreams = {"storaged_url": storaged, "catalogd_url": catalogd, "ingestd_url": ingestd, "queryd_url": queryd}
        upstreams["chatd_url"] = ""  # unless it runs here: then its own
        if ollama_url:
            config = _with(config, "chatd", ollama_url=ollama_url, storaged_url=storaged, catalogd_url=catalogd)
            upstreams["chatd_url"] = stack.enter_context(serve_in_thread(create_chatd(config)))
        config = _with(config, "gateway", **upstreams)
        url = stack.enter_context(serve_in_thread(create_gateway(config), port=gateway_port))
        yield Lake(url, root, config, token)


def _with(config: LakehouseConfig, section: str, **values: str) -> LakehouseConfig:
    current = getattr(config, section)
    return config.model_copy(update={section: current.model_copy(update=values)})
