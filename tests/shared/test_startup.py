"""A service that cannot start says why in one line and exits non-zero, whichever service it is: `service_app` puts the
startup-failure middleware in front of every app. Shown with the failure issue 22 found: a damaged log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scripts.net import free_port, wait_for_http

WRITES = {
    "observerd": ("/v1/observer/ops", {"service": "t", "op": "check", "status": "ok", "duration_ms": 2}),
    "pathwayd": ("/v1/pathway/traces", {"kind": "t", "steps": [{"name": "one", "output": 1}]}),
}


def serve(name: str, config: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "shared.stack.cli", "serve", name, "--config", str(config)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("name", sorted(WRITES))
def test_a_damaged_log_stops_the_start_in_one_line_naming_the_file_and_line(tmp_path: Path, name: str) -> None:
    log = tmp_path / f"{name}.jsonl"
    port = free_port()
    config = tmp_path / "lakehouse.toml"
    config.write_text(f'[{name}]\nbind = "127.0.0.1:{port}"\npersist_path = "{log}"\n')
    path, body = WRITES[name]
    first = serve(name, config)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", first, timeout_secs=60)
        for _ in range(3):
            assert httpx.post(f"http://127.0.0.1:{port}{path}", json=body).status_code == 201
    finally:
        first.terminate()
        first.communicate(timeout=30)
    lines = log.read_bytes().split(b"\n")
    lines[1] = b"garbage " + lines[1]
    log.write_bytes(b"\n".join(lines))

    second = serve(name, config)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 3, out  # uvicorn's status for a failed startup; never a signal
    assert f"{name}: {log}: line 2 is damaged" in out
    assert "Traceback" not in out
    assert log.read_bytes() == b"\n".join(lines)  # nothing was cut or rewritten
