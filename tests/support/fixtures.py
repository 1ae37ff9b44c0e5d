"""Fixtures every test package can use, loaded as a pytest plugin by tests/conftest.py (nothing imports a conftest).

- `make_config(**sections)`: the stack's config with explicit section overrides, as `load_config` builds it.
- `object_root`: a fresh directory for a service's on-disk state (storaged's root, a JSONL log, ...).
- `stack`: the gateway on a real port with every family pointed at its own echo upstream.
- `ollama_upstream` / `openai_upstream`: the provider fakes on real ports, recording what they received.
- from tests/support/storage.py: `s3_server` / `s3` (moto's S3 server), `storaged` (parametrized over the local
  and S3 backends), `storaged_local`, `catalogd`, and `start_storaged` / `start_catalogd` for custom setups.
- `live` / `live_with_token`: one whole stack per test session (`lakehouse up` on free ports, chat via the Ollama
  fake), without and with `auth.token`; for the CLI's and the console's tests.

A contract suite that must hold for several backends parametrizes a fixture over them, e.g.
`@pytest.fixture(params=["local", "s3"])` returning the service built on `request.param`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app as create_gateway
from shared.config import LakehouseConfig, load_config
from shared.registry import upstreams
from tests.support.fakes import ollama, openai
from tests.support.fakes.echo import EchoUpstream
from tests.support.fakes.recorder import FakeUpstream
from tests.support.live import LiveStack, live_stack, ollama_fake_process
from tests.support.servers import run_server, run_servers

# storaged, catalogd and the S3 server live in their own module; this plugin brings them to every test.
pytest_plugins = ["tests.support.storage"]

ConfigFactory = Callable[..., LakehouseConfig]


@dataclass
class Stack:
    """The gateway at `url`, each upstream service's family answered by its own echo upstream."""

    url: str
    upstreams: dict[str, EchoUpstream]
    app: Any


@dataclass
class Upstream:
    """A provider fake and the base URL it listens on."""

    fake: FakeUpstream
    url: str


@pytest.fixture
def make_config() -> ConfigFactory:
    def factory(**sections: Any) -> LakehouseConfig:
        return load_config(**sections)

    return factory


@pytest.fixture
def object_root(tmp_path: Path) -> Path:
    root = tmp_path / "objects"
    root.mkdir()
    return root


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        echoes = {s.name: EchoUpstream(name=s.name) for s in upstreams()}
        started = await exits.enter_async_context(run_servers(list(echoes.values())))
        urls = {s.gateway_url_key: url for s, url in zip(upstreams(), started, strict=True)}
        config = load_config(gateway={**urls, "timeouts": {"catalog": 0.5}})
        app = create_gateway(config)
        url = await exits.enter_async_context(run_server(app))
        yield Stack(url, echoes, app)


@pytest.fixture
async def ollama_upstream() -> AsyncIterator[Upstream]:
    fake = FakeUpstream()
    async with run_server(ollama.create_app(fake)) as url:
        yield Upstream(fake, url)


@pytest.fixture
async def openai_upstream() -> AsyncIterator[Upstream]:
    fake = FakeUpstream()
    async with run_server(openai.create_app(fake, key="or-key-123")) as url:
        yield Upstream(fake, url)


LIVE_TOKEN = "console-test-token-5d1c"


@pytest.fixture(scope="session")
def live_ollama() -> Iterator[str]:
    with ollama_fake_process() as url:
        yield url


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, live_ollama: str) -> Iterator[LiveStack]:
    with live_stack(tmp_path_factory.mktemp("live"), ollama_url=live_ollama) as stack:
        yield stack


@pytest.fixture(scope="session")
def live_with_token(tmp_path_factory: pytest.TempPathFactory, live_ollama: str) -> Iterator[LiveStack]:
    with live_stack(tmp_path_factory.mktemp("live-token"), ollama_url=live_ollama, token=LIVE_TOKEN) as stack:
        yield stack
