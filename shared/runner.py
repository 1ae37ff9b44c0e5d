"""Runs one service: the startup gates, the app factory from the topology table, uvicorn with our logging."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import ipaddress
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

import structlog
import uvicorn

from shared.config import LakehouseConfig
from shared.metrics import multiprocess_dir
from shared.sections import split_bind
from shared.topology import SERVICES

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux only: when the parent is killed outright, this process gets SIGTERM instead of living on orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class GateRefused(Exception):
    """A startup gate refused the bind; the message is the one line the operator needs."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # A hostname other than localhost may resolve anywhere: treat it as reachable from outside.
        return False


def allow_nonloopback_env(service: str) -> str:
    return f"LH_{service.upper()}_ALLOW_NONLOOPBACK"


def check_gates(service: str, config: LakehouseConfig, environ: Mapping[str, str]) -> None:
    """Refuse a non-loopback bind without the explicit bypass, and always without a token."""
    bind = config.section_bind(service)
    host, _ = split_bind(bind)
    if is_loopback(host):
        return
    bypass = allow_nonloopback_env(service)
    if environ.get(bypass) != "1":
        raise GateRefused(
            f"{service}: refusing non-loopback bind {bind}; set {bypass}=1 to allow it "
            f"(and set auth.token / LH_AUTH__TOKEN)"
        )
    if not config.auth.token.get_secret_value():
        raise GateRefused(
            f"{service}: refusing non-loopback bind {bind} with no auth token; set auth.token "
            f"in the config file or LH_AUTH__TOKEN"
        )


def load_factory(service: str) -> Callable[[LakehouseConfig], Any]:
    module_name, _, attr = SERVICES[service].factory.partition(":")
    factory: Callable[[LakehouseConfig], Any] = getattr(importlib.import_module(module_name), attr)
    return factory


def uvicorn_config(app: Any, bind: str, **options: Any) -> uvicorn.Config:
    host, port = split_bind(bind)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our structlog handler is already on the root logger
        access_log=False,  # AccessLogMiddleware writes the one access line
        server_header=False,
        # X-Forwarded-* from clients are not trusted: auth.allowed_ips must see the real peer.
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        **options,
    )


def _run_server(service: str, config: LakehouseConfig, sockets: list[socket.socket] | None = None) -> bool:
    app = load_factory(service)(config)
    # The gateway passes the upstream's Date through; its own would be a duplicate.
    options = {"date_header": False} if service == "gateway" else {}
    server = uvicorn.Server(uvicorn_config(app, config.section_bind(service), **options))
    server.run(sockets=sockets)
    return bool(server.started)


def serve(service: str, config: LakehouseConfig) -> None:
    """Run `service` until SIGINT/SIGTERM (uvicorn installs the handlers and drains connections)."""
    check_gates(service, config, os.environ)
    workers = (config.gateway.workers or os.cpu_count() or 1) if service == "gateway" else 1
    if workers > 1:
        with multiprocess_dir():  # the workers' metrics add up in one per-run directory
            serve_forked(service, config, workers)
    elif not _run_server(service, config):
        raise SystemExit(1)


def bind_socket(bind: str) -> socket.socket:
    """A listening TCP socket on "host:port" (IPv4 or IPv6); OSError when the address cannot be had."""
    host, port = split_bind(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


def serve_forked(service: str, config: LakehouseConfig, workers: int) -> None:
    """Bind once, then fork `workers` processes that accept on the shared socket; stop them all together."""
    bind = config.section_bind(service)
    try:
        sock = bind_socket(bind)
    except OSError as exc:
        structlog.get_logger("runner").error("cannot bind", service=service, bind=bind, error=str(exc))
        raise SystemExit(1) from None
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if sys.platform == "linux":
                    die_with_parent()
                code = 0 if _run_server(service, config, [sock]) else 1
            finally:
                # Never return into the parent's loop from a child, whatever happened.
                os._exit(code)
        children.append(pid)
    sock.close()

    def stop(signum: int, frame: FrameType | None) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    failed = False
    for _ in children:
        _, status = os.wait()
        if os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM, -signal.SIGINT):
            failed = True
        stop(signal.SIGTERM, None)  # one worker gone means the service is going down: take the rest along
    if failed:
        raise SystemExit(1)
