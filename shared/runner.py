"""Runs one service: the startup gates, the app factory from the topology table, uvicorn with our logging."""

from __future__ import annotations

import importlib
import ipaddress
import os
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn

from shared.config import LakehouseConfig, split_bind
from shared.topology import SERVICES


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
        lifespan="on",
        timeout_graceful_shutdown=5,
        **options,
    )


def serve(service: str, config: LakehouseConfig) -> None:
    """Run `service` until SIGINT/SIGTERM (uvicorn installs the handlers and drains connections)."""
    check_gates(service, config, os.environ)
    app = load_factory(service)(config)
    # The gateway passes the upstream's Date through; its own would be a duplicate.
    options = {"date_header": False} if service == "gateway" else {}
    server = uvicorn.Server(uvicorn_config(app, config.section_bind(service), **options))
    server.run()
    if not server.started:
        raise SystemExit(1)
