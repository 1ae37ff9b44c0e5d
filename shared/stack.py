"""`lakehouse up`: the gateway and the ten services as child processes, supervised until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

import httpx

from shared.config import LakehouseConfig
from shared.runner import GateRefused, bind_socket, check_gates, die_with_parent
from shared.sections import split_bind
from shared.topology import SERVICES

STARTUP_TIMEOUT_SECS = 30.0
STOP_TIMEOUT_SECS = 10.0
POLL_SECS = 0.1


def probe_url(bind: str) -> str:
    host, port = split_bind(bind)
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}
    host = wildcard.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def plan(config: LakehouseConfig) -> list[tuple[str, str]]:
    """What `up` runs: every service in the registry, in its order, with the bind each one gets."""
    return [(name, config.section_bind(name)) for name in SERVICES]


@dataclass
class Child:
    name: str
    bind: str
    process: subprocess.Popen[bytes]
    ready: bool = False


@dataclass
class Supervisor:
    config: LakehouseConfig
    config_path: str | None
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def start(self) -> None:
        command = [sys.executable, "-m", "shared.cli", "serve"]
        extra = ["--config", self.config_path] if self.config_path else []
        preexec = die_with_parent if sys.platform == "linux" else None
        for name, bind in plan(self.config):
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops children in order.
            process = subprocess.Popen([*command, name, *extra], preexec_fn=preexec, process_group=0)
            self.children.append(Child(name, bind, process))

    def wait_ready(self) -> str | None:
        """Print each service as it answers /health; return why the stack cannot start, or None."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
        with httpx.Client(timeout=1.0) as client:
            while not all(child.ready for child in self.children):
                if self.stopping:
                    return "interrupted during startup"
                for child in self.children:
                    if child.ready:
                        continue
                    code = child.process.poll()
                    if code is not None:
                        return f"{child.name} exited with status {code} during startup (its log says why)"
                    try:
                        client.get(probe_url(child.bind) + "/health")
                    except httpx.TransportError:
                        continue
                    child.ready = True
                    self.out(f"  {child.name:<10} {probe_url(child.bind)}  ready")
                if time.monotonic() > deadline:
                    late = ", ".join(c.name for c in self.children if not c.ready)
                    return f"not healthy after {STARTUP_TIMEOUT_SECS:.0f}s: {late}"
                time.sleep(POLL_SECS)
        return None

    def watch(self) -> str | None:
        """Block until a stop signal (None) or until a service dies (the reason)."""
        while not self.stopping:
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    return f"{child.name} exited unexpectedly with status {code}"
            time.sleep(POLL_SECS)
        return None

    def stop(self) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECS
        for child in self.children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.out(f"  {child.name} did not stop within {STOP_TIMEOUT_SECS:.0f}s; killing it")
                child.process.kill()
                child.process.wait()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True


def port_in_use(bind: str) -> bool:
    try:
        bind_socket(bind).close()
    except OSError:
        return True
    return False


def preflight(config: LakehouseConfig) -> str | None:
    """Why the stack cannot start, found before any process is spawned; None when it can."""
    services = plan(config)
    try:
        for name, _ in services:
            check_gates(name, config, os.environ)
    except GateRefused as exc:
        return str(exc)
    taken = [f"{name} ({bind})" for name, bind in services if port_in_use(bind)]
    if taken:
        return f"address already in use: {', '.join(taken)}; stop what holds it or change the bind"
    return None


def run_stack(config: LakehouseConfig, *, config_path: str | None) -> int:
    problem = preflight(config)
    if problem is not None:
        print(f"lakehouse: error: {problem}", file=sys.stderr)
        return 1
    supervisor = Supervisor(config, config_path)
    previous = {sig: signal.signal(sig, supervisor.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.out(f"lakehouse up: starting {len(SERVICES)} services")
        supervisor.start()
        failure = supervisor.wait_ready()
        if failure is None:
            gateway = probe_url(config.gateway.bind)
            supervisor.out(f"lakehouse up: all {len(SERVICES)} services ready. Try:")
            supervisor.out(f"  curl {gateway}/v1/health")
            supervisor.out(
                f"  curl {gateway}/v1/chat -H 'content-type: application/json' "
                """-d '{"model": "qwen3.5:latest", "messages": [{"role": "user", "content": "hi"}]}'"""
            )
            supervisor.out("Ctrl-C stops the stack.")
            failure = supervisor.watch()
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure is not None and not (supervisor.stopping and failure == "interrupted during startup"):
        print(f"lakehouse: error: {failure}; stopped the others", file=sys.stderr)
        return 1
    supervisor.out("lakehouse up: stopped")
    return 0
