"""One service as its own OS process (`lakehouse serve <service>`), as an operator runs it on its own box."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from scripts.net import free_port, serving, wait_for_http
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


def start_serving(service: str, port: int, environ: dict[str, str]) -> subprocess.Popen[bytes]:
    """`lakehouse serve <service>` on `port` in a process group of its own (so a test can kill it and its workers
    as one, `stop_serving`), configured by `environ` (full LH_* names) on top of this environment; once healthy."""
    env = {**os.environ, "LH_CONFIG": "/dev/null/none.toml", f"LH_{service.upper()}__BIND": f"127.0.0.1:{port}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "serve", service],
        env={**env, **environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_http(f"http://127.0.0.1:{port}/health", process, timeout_secs=120)
    return process


def stop_serving(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    os.killpg(process.pid, sig)
    process.wait(timeout=15)


def workers_answered(tmp: Path) -> set[str]:
    """The gateway workers that counted a request, from the per-run metrics directory under `tmp` (the workers'
    TMPDIR): their files are named counter_<pid>.db."""
    return {p.stem.rsplit("_", 1)[1] for run in tmp.glob("lakehouse-metrics-*") for p in run.glob("counter_*.db")}


def until_every_worker_answers(url: str, tmp: Path, workers: int, within_secs: float = 60.0) -> None:
    """Probe `/health` on new connections until `workers` workers have answered: the first answers while the others
    may still be starting, and a test that counts per worker must wait for all of them."""
    deadline = time.monotonic() + within_secs
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, limits=fresh) as http:
        while len(workers_answered(tmp)) < workers:
            assert time.monotonic() < deadline, f"only {len(workers_answered(tmp))} of {workers} workers answered"
            http.get("/health")
            time.sleep(0.02)
