"""One lakehouse per module for the engines' tests (each test uses its own tables), and one with a token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.lake import Lake, running_lake

TOKEN = "iceberg-test-token-0123456789"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with running_lake(tmp_path_factory.mktemp("lake")) as running:
        yield running


@pytest.fixture(scope="module")
def guarded_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    with running_lake(tmp_path_factory.mktemp("guarded"), token=TOKEN) as running:
        yield running
