from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.fakes import ollama, openai
from tests.fakes.recorder import FakeUpstream
from tests.utils import run_server


@dataclass
class Upstream:
    fake: FakeUpstream
    url: str


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
