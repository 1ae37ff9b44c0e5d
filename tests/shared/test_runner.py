from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import load_config
from shared.server.runner import SPARE_FILES, GateRefused, check_gates
from shared.web.auth import is_loopback
from tests.support.servers import free_port, wait_for_http


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.internal", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_bind_passes_without_anything() -> None:
    check_gates("chatd", load_config(), {})


def test_nonloopback_refused_without_bypass() -> None:
    config = load_config(chatd={"bind": "0.0.0.0:3220"}, auth={"token": "t"})
    with pytest.raises(GateRefused, match=r"^chatd: refusing non-loopback bind 0\.0\.0\.0:3220; set LH_CHATD_ALLOW"):
        check_gates("chatd", config, {})


def test_bypass_without_token_is_still_refused() -> None:
    config = load_config(gateway={"bind": "[::]:3110"})
    with pytest.raises(GateRefused, match=r"no auth token; set auth\.token .* or LH_AUTH__TOKEN"):
        check_gates("gateway", config, {"LH_GATEWAY_ALLOW_NONLOOPBACK": "1"})


def test_bypass_and_token_pass() -> None:
    config = load_config(gateway={"bind": "0.0.0.0:3110"}, auth={"token": "t"})
    check_gates("gateway", config, {"LH_GATEWAY_ALLOW_NONLOOPBACK": "1"})


def test_serve_lifts_the_open_files_limit_to_fit_max_connections() -> None:
    port = free_port()

    def low_limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "serve", "storaged"],
        env={**os.environ, "LH_STORAGED__BIND": f"127.0.0.1:{port}", "LH_GATEWAY__MAX_CONNECTIONS": "3000"},
        preexec_fn=low_limit,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process, timeout_secs=120)
        limits = Path(f"/proc/{process.pid}/limits").read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)
    (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    soft = int(line.split()[3])
    assert soft == min(3000 + SPARE_FILES, hard)
