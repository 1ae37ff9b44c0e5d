from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

# usearch's extension carries its own static libstdc++; when it loads first, importing onnxruntime in the same
# process segfaults (in std::codecvt, during onnxruntime's start-up). Services run in processes of their own, but
# the test process holds vectord and embedd both: onnxruntime goes first.
import onnxruntime  # noqa: F401  # isort: skip
import pytest
import structlog

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LH_* variable or ./lakehouse.toml from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("LH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    """A test that configures logging onto a captured stream must not leave it in place for the next one."""
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
