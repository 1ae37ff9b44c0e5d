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
from typing import Literal

import httpx

from shared.config import LakehouseConfig
from shared.config.base import split_bind
from shared.config.s3_api import describe_s3_api
from shared.registry import names
from shared.server.restart_policy import CrashWindow, describe_exit
from shared.server.runner import GateRefused, bind_socket, check_gates, die_with_parent
from shared.stack.relay import Relay

READY_TIMEOUT_SECS = 60.0
STOP_TIMEOUT_SECS = 10.0
POLL_SECS = 0.1
RESTART_POLICIES = ("on-failure", "no")
RestartPolicy = Literal["on-failure", "no"]


def probe_url(bind: str) -> str:
    host, port = split_bind(bind)
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}
    host = wildcard.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def plan(config: LakehouseConfig) -> list[tuple[str, str]]:
    """What `up` runs: every service in the registry, in its order, with the bind each one gets."""
    return [(name, config.section_bind(name)) for name in names()]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    bind: str
    process: subprocess.Popen[bytes]
    ready: bool = False
    crashes: CrashWindow = field(default_factory=CrashWindow)
    restart_at: float | None = None  # set while a crashed child waits out its backoff


@dataclass
class Supervisor:
    config: LakehouseConfig
    config_path: str | None
    ready_timeout_secs: float = READY_TIMEOUT_SECS
    restart: RestartPolicy = "on-failure"
    relay: Relay | None = None  # when set, children's output is piped through it, prefixed with their names
    quiet: bool = False
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    warn: Callable[[str], None] = field(default=_stderr)
    children: list[Child] = field(default_factory=list)
    stopping: bool = False

    def spawn(self, name: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "shared.stack.cli", "serve", name]
        extra = ["--config", self.config_path] if self.config_path else []
        env = None
        if self.relay is not None:
            # The relay decides how lines look: console lines for a terminal, JSON objects for anything else.
            extra += ["--log-format", "console" if self.relay.tty else "json"]
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            if self.quiet:
                env["LH_LOG__LEVEL"] = "warning"
        preexec = die_with_parent if sys.platform == "linux" else None
        # Own process group: a terminal's Ctrl-C reaches only the supervisor, which stops children in order.
        process = subprocess.Popen(
            [*command, *extra],
            preexec_fn=preexec,
            process_group=0,
            env=env,
            stdout=subprocess.PIPE if self.relay else None,
            stderr=subprocess.STDOUT if self.relay else None,
        )
        if self.relay is not None and process.stdout is not None:
            self.relay.follow(name, process.stdout)
        return process

    def start(self) -> None:
        for name, bind in plan(self.config):
            self.children.append(Child(name, bind, self.spawn(name)))

    def wait_ready(self) -> str | None:
        """Wait for each service's /health to be 200 (serving, not loading), then for the gateway's /v1/health to be
        ok (every upstream reachable through it, auth included); return why the stack cannot start, or None."""
        deadline = time.monotonic() + self.ready_timeout_secs
        token = self.config.auth.token.get_secret_value()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(timeout=1.0, headers=headers, trust_env=False) as client:
            while not all(child.ready for child in self.children):
                if self.stopping:
                    return "interrupted during startup"
                for child in self.children:
                    if child.ready:
                        continue
                    code = child.process.poll()
                    if code is not None:
                        return f"{child.name} {describe_exit(code)} during startup (its log says why)"
                    try:
                        response = client.get(probe_url(child.bind) + "/health")
                    except httpx.TransportError:
                        continue
                    # Listening is not ready: a service still loading (vectord replaying its log) answers 503.
                    child.ready = response.status_code == 200
                if time.monotonic() > deadline:
                    late = ", ".join(c.name for c in self.children if not c.ready)
                    return f"not healthy after {self.ready_timeout_secs:g}s: {late}"
                time.sleep(POLL_SECS)
            return self.wait_gateway_health(client, deadline)

    def wait_gateway_health(self, client: httpx.Client, deadline: float) -> str | None:
        url = probe_url(self.config.gateway.bind) + "/v1/health"
        last = "no answer"
        while not self.stopping:
            try:
                response = client.get(url)
            except httpx.TransportError as exc:
                last = f"no answer ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return None
                last = f"{response.status_code} {describe_health(response)}"
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    return f"{child.name} {describe_exit(code)} during startup (its log says why)"
            if time.monotonic() > deadline:
                return f"the gateway's /v1/health is not ok after {self.ready_timeout_secs:g}s: {last}"
            time.sleep(POLL_SECS)
        return "interrupted during startup"

    def watch(self) -> str | None:
        """Block until a stop signal (None) or until the stack must stop (the reason): a service died under
        `--restart no`, or crashed too often to restart. Crashed services are restarted with backoff."""
        with httpx.Client(timeout=0.5, trust_env=False) as client:
            while not self.stopping:
                now = time.monotonic()
                for child in self.children:
                    if child.restart_at is not None:
                        if now >= child.restart_at:
                            child.restart_at = None
                            child.process = self.spawn(child.name)
                            self.warn(f"lakehouse up: restarted {child.name} (pid {child.process.pid})")
                        continue
                    code = child.process.poll()
                    if code is not None:
                        failure = self.crashed(child, code)
                        if failure is not None:
                            return failure
                    elif not child.ready:
                        self.probe_again(client, child)
                time.sleep(POLL_SECS)
        return None

    def crashed(self, child: Child, code: int) -> str | None:
        """Schedule the restart of a crashed child, or say why the stack must stop instead."""
        what = f"{child.name} {describe_exit(code)}"
        child.ready = False
        if self.restart == "no":
            return what
        count = child.crashes.record()
        if child.crashes.exhausted:
            return f"{what}; it crashed {count} times within {child.crashes.window_secs:g}s, giving up"
        delay = child.crashes.delay()
        self.warn(f"lakehouse up: {what}; restarting in {delay:g}s ({count} crashes within the last minute)")
        child.restart_at = time.monotonic() + delay
        return None

    def probe_again(self, client: httpx.Client, child: Child) -> None:
        try:
            response = client.get(probe_url(child.bind) + "/health")
        except httpx.TransportError:
            return
        if response.status_code != 200:
            return  # restarted and listening, still loading
        child.ready = True
        self.out(f"lakehouse up: {child.name} ready again")

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


def summary(config: LakehouseConfig, children: list[Child]) -> list[str]:
    """The one block printed when the stack is ready: where each service listens, and what to try."""
    gateway = probe_url(config.gateway.bind)
    lines = [f"lakehouse up: all {len(children)} services ready", "", f"  {'SERVICE':<10} {'URL':<28} {'STATE':<6} PID"]
    lines += [f"  {c.name:<10} {probe_url(c.bind):<28} {'ready':<6} {c.process.pid}" for c in children]
    s3_api = config.s3_api
    lines += ["", describe_s3_api(enabled=config.s3_api_on, endpoint=gateway, region=s3_api.region)]
    lines += [
        "",
        # What answers on any machine: no model server needed (a chat needs an Ollama or a provider key).
        "Try:",
        f"  curl {gateway}/v1/health",
        f"  curl {gateway}/v1/embed -H 'content-type: application/json' "
        """-d '{"texts": ["red apples"], "model": "builtin/all-minilm-l6-v2"}'""",
        f"""  curl {gateway}/v1/sql -H 'content-type: application/json' -d '{{"sql": "select 42 as answer"}}'""",
        "Ctrl-C stops the stack.",
    ]
    return lines


def describe_health(response: httpx.Response) -> str:
    """The services a degraded /v1/health names as down, or the error it answered with."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    services = body.get("services") if isinstance(body, dict) else None
    if isinstance(services, dict):
        down = [
            f"{name} ({report.get('detail', 'down')} at {report.get('url')})"
            for name, report in services.items()
            if isinstance(report, dict) and report.get("status") != "ok"
        ]
        return "down: " + ", ".join(down)
    return str(body)[:200]


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


def run_stack(
    config: LakehouseConfig,
    *,
    config_path: str | None,
    ready_timeout_secs: float = READY_TIMEOUT_SECS,
    restart: RestartPolicy = "on-failure",
    quiet: bool = False,
) -> int:
    problem = preflight(config)
    if problem is not None:
        print(f"lakehouse: error: {problem}", file=sys.stderr)
        return 1
    relay = Relay(names(), lambda line: print(line, flush=True), tty=sys.stdout.isatty())
    supervisor = Supervisor(config, config_path, ready_timeout_secs, restart, relay, quiet, out=relay.say)
    previous = {sig: signal.signal(sig, supervisor.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.out(f"lakehouse up: starting {len(names())} services")
        supervisor.start()
        failure = supervisor.wait_ready()
        if failure is None:
            for line in summary(config, supervisor.children):
                supervisor.out(line)
            failure = supervisor.watch()
    finally:
        supervisor.stop()
        relay.drain()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure is not None and not (supervisor.stopping and failure == "interrupted during startup"):
        print(f"lakehouse: error: {failure}; stopped the others", file=sys.stderr)
        return 1
    supervisor.out("lakehouse up: stopped")
    return 0
