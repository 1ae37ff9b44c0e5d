"""Runs one service: the startup gates, the app factory from its registry row, uvicorn with our logging."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import socket
from collections.abc import Mapping
from typing import Any

import structlog
import uvicorn

from shared.config import LakehouseConfig
from shared.config.base import split_bind
from shared.registry import service as registered
from shared.server.http_protocol import ServerLimits, protocol_class
from shared.server.notify import notify_when_healthy
from shared.server.workers import linux_only, supervise_workers
from shared.telemetry.metrics import multiprocess_dir
from shared.web.auth import is_loopback

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux only: when the parent is killed outright, this process gets SIGTERM instead of living on orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class GateRefused(Exception):
    """A startup gate refused the bind; the message is the one line the operator needs."""


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


# What the gateway adds to a request it forwards (X-Forwarded-For/-Proto/-Host, X-Request-ID) with room to spare:
# a service allows this much more than the gateway, so it never refuses a head the gateway accepted.
FORWARDING_HEADROOM_FIELDS = 8
FORWARDING_HEADROOM_BYTES = 4 << 10


def server_limits(config: LakehouseConfig, service: str) -> ServerLimits:
    """The [gateway] server limits, which every server applies; services get the forwarding headroom on top."""
    gateway = config.gateway
    extra_fields, extra_bytes = (
        (0, 0) if registered(service).front_door else (FORWARDING_HEADROOM_FIELDS, FORWARDING_HEADROOM_BYTES)
    )
    return ServerLimits(
        max_header_bytes=gateway.max_header_bytes + extra_bytes,
        max_header_count=gateway.max_header_count + extra_fields,
        header_timeout_secs=gateway.header_timeout_secs,
        keepalive_timeout_secs=gateway.keepalive_timeout_secs,
        max_connections=gateway.max_connections,
    )


def uvicorn_config(app: Any, bind: str, *, limits: ServerLimits | None = None, **options: Any) -> uvicorn.Config:
    host, port = split_bind(bind)
    limits = limits or ServerLimits()
    options.setdefault("timeout_keep_alive", limits.keepalive_timeout_secs)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(limits),
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
    row = registered(service)
    app = row.app(config)
    # The gateway passes the upstream's Date through; its own would be a duplicate.
    options = {"date_header": False} if row.front_door else {}
    limits = server_limits(config, service)
    server = uvicorn.Server(uvicorn_config(app, config.section_bind(service), limits=limits, **options))
    server.run(sockets=sockets)
    return bool(server.started)


# Beyond the client connections: upstream pools, probes, log files, the listening socket.
SPARE_FILES = 256


def raise_open_files_limit(max_connections: int) -> None:
    """Lift the soft RLIMIT_NOFILE towards the hard one, so max_connections is reached before EMFILE is."""
    wanted = max_connections + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < wanted:
        structlog.get_logger("runner").warning(
            "open-files limit below max_connections",
            limit=soft,
            max_connections=max_connections,
            hint="raise the hard limit (LimitNOFILE= in a systemd unit, ulimit -Hn) or lower gateway.max_connections",
        )


def serve(service: str, config: LakehouseConfig) -> None:
    """Run `service` until SIGINT/SIGTERM (uvicorn installs the handlers and drains connections)."""
    check_gates(service, config, os.environ)
    raise_open_files_limit(config.gateway.max_connections)
    # Only the front door runs several processes on its port; a service behind it is one process.
    workers = (config.gateway.workers or os.cpu_count() or 1) if registered(service).front_door else 1
    notify_when_healthy(config.section_bind(service))
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
    """Bind once, then run `workers` processes that accept on the shared socket, respawning any that dies."""
    bind = config.section_bind(service)
    try:
        sock = bind_socket(bind)
    except OSError as exc:
        structlog.get_logger("runner").error("cannot bind", service=service, bind=bind, error=str(exc))
        raise SystemExit(1) from None
    with sock:

        def run(sockets: list[socket.socket]) -> bool:
            return _run_server(service, config, sockets)

        if not supervise_workers(service, sock, workers, run, before=linux_only(die_with_parent)):
            raise SystemExit(1)
