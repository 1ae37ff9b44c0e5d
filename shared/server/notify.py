"""systemd readiness (`Type=notify`): READY=1 once the service's own `/health` answers ok, not when it starts.

`/health` says `loading` (503) while a service cannot serve its API yet (vectord replaying its log), so "ready" means
the same to systemd as to `lakehouse up`, the gateway's `/v1/health` and the console: requests are served. The probe
runs on a thread of the main process (the supervisor of forked gateway workers, or the one server) and speaks raw
HTTP on a socket, so that no library lock is held by it when the supervisor forks a worker.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping

from shared.config.base import split_bind

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
PROBE_EVERY_SECS = 0.2
# A wildcard bind is probed on the loopback of its family.
WILDCARD_PROBE = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def notify(message: bytes, environ: Mapping[str, str]) -> bool:
    """Send `message` to the service manager's socket; False when there is none (not run by systemd)."""
    path = environ.get(NOTIFY_SOCKET_ENV, "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path  # "@name" is an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendto(message, address)
    return True


def health_ok(bind: str, *, timeout: float = 2.0) -> bool:
    """Whether GET /health at `bind` answers 200 now."""
    host, port = split_bind(bind)
    host = WILDCARD_PROBE.get(host, host)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            sock.sendall(f"GET /health HTTP/1.1\r\nHost: {netloc}\r\nConnection: close\r\n\r\n".encode())
            status_line = sock.makefile("rb").readline()
    except OSError:
        return False
    return status_line.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 "))


def _wait_then_notify(bind: str, environ: Mapping[str, str]) -> None:
    while not health_ok(bind):
        time.sleep(PROBE_EVERY_SECS)
    notify(b"READY=1\nSTATUS=serving", environ)


def notify_when_healthy(bind: str, environ: Mapping[str, str] = os.environ) -> threading.Thread | None:
    """Under systemd, a daemon thread that sends READY=1 once `bind`'s /health is ok; None elsewhere."""
    if not environ.get(NOTIFY_SOCKET_ENV):
        return None
    thread = threading.Thread(target=_wait_then_notify, args=(bind, dict(environ)), name="sd-notify", daemon=True)
    thread.start()
    return thread
