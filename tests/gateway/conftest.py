from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.app import create_app
from shared.config import load_config
from shared.topology import UPSTREAMS
from tests.fakes.echo import EchoUpstream
from tests.utils import run_server, run_servers


@dataclass
class Stack:
    url: str
    upstreams: dict[str, EchoUpstream]
    app: Any


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """The gateway on a real port, each family pointed at its own echo upstream on a real port."""
    async with AsyncExitStack() as exits:
        upstreams = {s.name: EchoUpstream(name=s.name) for s in UPSTREAMS}
        started = await exits.enter_async_context(run_servers(list(upstreams.values())))
        urls = {s.gateway_url_key: url for s, url in zip(UPSTREAMS, started, strict=True)}
        config = load_config(gateway={**urls, "timeouts": {"catalog": 0.5}})
        app = create_app(config)
        url = await exits.enter_async_context(run_server(app))
        yield Stack(url, upstreams, app)
