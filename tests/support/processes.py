"""One service as its own OS process (`lakehouse serve <service>`), as an operator runs it on its own box."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.net import free_port, serving
from tests.support.live import clean_environment


@contextmanager
def served(service: str, workdir: Path, **settings: str) -> Iterator[str]:
    """`service` on a free loopback port, configured by `settings` (LH_<SERVICE>__<KEY> names without the
    prefix, e.g. storaged_url="..."); yields its base URL and stops it (SIGTERM) on exit."""
    port = free_port()
    env = {
        **clean_environment(),
        "LH_CONFIG": str(workdir / "absent.toml"),  # defaults plus the settings below, whatever the cwd holds
        f"LH_{service.upper()}__BIND": f"127.0.0.1:{port}",
        **{f"LH_{service.upper()}__{key.upper()}": value for key, value in settings.items()},
    }
    url = f"http://127.0.0.1:{port}"
    with (
        (workdir / f"{service}-{port}.log").open("wb") as log,
        serving(
            [sys.executable, "-m", "shared.stack.cli", "serve", service],
            url + "/health",
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=log,
        ),
    ):
        yield url
