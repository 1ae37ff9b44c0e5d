"""A whole stack started the way an operator starts it (`lakehouse up` in its own directory), on free ports.

For the tests that need every service at once behind one gateway: the CLI's and the console's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.net import free_port, serving
from scripts.stack_config import stack_config

READY_TIMEOUT_SECS = 90.0
# The developer's own settings and provider keys must not reach the stack under test.
PROVIDER_KEY_ENVS = ("OLLAMA_CLOUD_KEY", "OPENROUTER_API_KEY", "OPENCODE_API_KEY", "KIMI_API_KEY")


def clean_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("LH_") and name not in PROVIDER_KEY_ENVS
    }


@dataclass(frozen=True)
class LiveStack:
    url: str  # the gateway
    config: Path
    workdir: Path
    token: str


def _wait_ready(url: str, process: subprocess.Popen[bytes], token: str) -> None:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + READY_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"lakehouse up exited with {process.returncode}")
        try:
            if httpx.get(url + "/v1/health", headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the stack at {url} was not healthy within {READY_TIMEOUT_SECS:g}s")


@contextmanager
def live_stack(workdir: Path, *, ollama_url: str, token: str = "") -> Iterator[LiveStack]:
    """`lakehouse up` in `workdir` (its data lands there), healthy before the block, stopped with Ctrl-C after."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "lakehouse.toml"
    text = stack_config(ollama_url, workdir)
    if token:
        text += f'\n[auth]\ntoken = "{token}"\n'
    config.write_text(text)
    url = "http://" + tomllib.loads(text)["gateway"]["bind"]
    log = (workdir / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "up", "--config", str(config)],
        cwd=workdir,
        env=clean_environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, process, token)
        yield LiveStack(url, config, workdir, token)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def ollama_fake_process() -> Iterator[str]:
    """The Ollama-protocol fake in its own process (a stack's chatd reaches it over the wire); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "tests.support.fakes.ollama", "--port", str(port)]
    with serving(args, url + "/api/tags", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        yield url
