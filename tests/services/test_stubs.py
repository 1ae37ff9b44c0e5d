from __future__ import annotations

import pytest

from shared.config import load_config
from shared.runner import load_factory
from shared.topology import SERVICES
from tests.support.servers import app_client, asgi_client

BUILT = (
    "gateway",
    "chatd",
    "storaged",
    "catalogd",
    "ingestd",
    "queryd",
    "pathwayd",
    "observerd",
    "embedd",
    "vectord",
    "matrixd",
)
STUBS = [name for name in SERVICES if name not in BUILT]


async def test_every_service_name_has_its_own_app() -> None:
    config = load_config()
    for name in SERVICES:
        async with asgi_client(load_factory(name)(config)) as client:
            health = await client.get("/health")
        assert health.json() == {"status": "ok", "service": name}


@pytest.mark.parametrize("name", STUBS)
async def test_stub_is_honest(name: str) -> None:
    family = SERVICES[name].family
    async with app_client(load_factory(name)(load_config())) as client:
        health = await client.get("/health")
        bare = await client.get(family)
        deep = await client.post(family + "/some/thing?x=1", content=b"{}")
        outside = await client.get("/v1/other")
        exact = [await client.post(path, content=b"{}") for path in SERVICES[name].exact_paths]
    assert health.json() == {"status": "ok", "service": name}
    for response in (bare, deep, *exact):
        assert response.status_code == 501
        assert response.json() == {"error": {"code": "not_implemented", "message": f"{name} is not implemented yet"}}
    assert outside.status_code == 404
