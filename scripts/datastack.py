"""The whole stack on free loopback ports with its object root in a temp directory, for the data-plane benchmarks.

with data_stack(work_dir) as stack:
    httpx.post(f"{stack.gateway}/v1/ingest/trips", ...)
    stack.service_pid("ingestd")
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

from scripts.net import wait_for_http
from scripts.stack_config import stack_config

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class DataStack:
    gateway: str
    root: Path
    supervisor: subprocess.Popen[bytes]

    def service_pid(self, name: str) -> int:
        """The pid of `lakehouse up`'s child serving `name` (found through /proc)."""
        wanted = f"serve\0{name}\0".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))
            if ppid == self.supervisor.pid and wanted in cmdline:
                return int(entry.name)
        raise SystemExit(f"no {name} process under lakehouse up (pid {self.supervisor.pid})")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for pid {pid}")


@contextmanager
def data_stack(work: Path, **env: str) -> Iterator[DataStack]:
    config = work / "lakehouse.toml"
    config.write_text(stack_config("http://127.0.0.1:9", work))
    gateway = "http://" + tomllib.loads(config.read_text())["gateway"]["bind"]
    root = work / "objects"  # where stack_config puts storaged's root under `work`
    environ = {**os.environ, "LH_GATEWAY__WORKERS": "1", **env}
    log = (work / "up.log").open("wb")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "up", "--config", str(config)],
        cwd=ROOT,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for_http(gateway + "/health", supervisor, timeout_secs=60)
        except AssertionError as exc:
            raise SystemExit(f"the stack did not start ({exc}):\n{(work / 'up.log').read_text()[-3000:]}") from None
        deadline = time.monotonic() + 60
        while httpx.get(f"{gateway}/v1/health").status_code != 200:  # every service answering, not just the gateway
            if time.monotonic() > deadline or supervisor.poll() is not None:
                raise SystemExit(f"the stack did not become healthy:\n{(work / 'up.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield DataStack(gateway, root, supervisor)
    finally:
        supervisor.send_signal(signal.SIGINT)
        supervisor.wait(timeout=30)
        log.close()
