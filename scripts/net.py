"""Loopback helpers shared by the smokes, the benchmarks and the tests: free ports, waiting for a server, a server
process that is stopped on exit."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (all held open together so none repeats)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def wait_for_http(
    url: str, process: subprocess.Popen[Any] | None = None, *, timeout_secs: float = 30
) -> httpx.Response:
    """GET `url` until it answers; fail early if `process` exits first."""
    deadline = time.monotonic() + timeout_secs
    while True:
        try:
            return httpx.get(url)
        except httpx.TransportError:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"process exited with {process.returncode}: {process.communicate()}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout_secs}s") from None
            time.sleep(0.1)


@contextmanager
def serving(args: list[str], health_url: str, **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """`args` as a process, once `health_url` answers; SIGTERM and a wait on exit."""
    process = subprocess.Popen(args, **popen)
    try:
        wait_for_http(health_url, process)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
