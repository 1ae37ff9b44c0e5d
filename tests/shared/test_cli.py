from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from shared.config.root import COMMON_SECTIONS
from shared.registry import names
from shared.stack.cli import main
from tests.support.servers import free_port, wait_for_http


def test_config_show_prints_every_section_as_toml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show"]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert list(shown) == [*names(), *COMMON_SECTIONS]
    assert shown["chatd"]["bind"] == "127.0.0.1:3220"
    assert shown["ingestd"]["max_ingest_bytes"] == 268435456
    assert shown["auth"]["token"] == ""


def test_config_show_redacts_secrets_and_shows_overrides(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "lh.toml"
    path.write_text('[chatd]\nbind = "127.0.0.1:5000"\ntimeout_secs = 9\n[s3]\nsecret_access_key = "s3cret"\n')
    monkeypatch.setenv("LH_CHATD__BIND", "127.0.0.1:4000")
    monkeypatch.setenv("LH_AUTH__TOKEN", "hunter2")
    monkeypatch.setenv("LH_S3_API__SECRET_ACCESS_KEY", "s3-api-secret")
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "s3cret" not in out
    assert "s3-api-secret" not in out
    shown = tomllib.loads(out)
    assert (shown["chatd"]["bind"], shown["chatd"]["timeout_secs"]) == ("127.0.0.1:4000", 9)
    assert shown["auth"]["token"] == "***"
    assert shown["s3"]["secret_access_key"] == "***"
    assert shown["s3_api"]["secret_access_key"] == "***"


def test_config_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out == "ok\n"
    bad = tmp_path / "bad.toml"
    bad.write_text("[queryd]\nrefresh_evry = '1m'\n")
    assert main(["config", "check", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"lakehouse: error: invalid configuration:\n{bad}: key queryd.refresh_evry: unknown key")
    assert "Traceback" not in err


def test_unknown_service_lists_valid_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "chat"])
    assert exit_info.value.code == 2
    assert 'unknown service "chat"; valid names: gateway, storaged,' in capsys.readouterr().err


def run_cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_on_all_interfaces_needs_bypass_and_token() -> None:
    port = free_port()
    bind = {"LH_STORAGED__BIND": f"0.0.0.0:{port}"}
    refused = run_cli("serve", "storaged", env=bind)
    _, err = refused.communicate(timeout=30)
    assert refused.returncode == 1
    assert err.strip().splitlines()[-1] == (
        f"lakehouse: error: storaged: refusing non-loopback bind 0.0.0.0:{port}; "
        "set LH_STORAGED_ALLOW_NONLOOPBACK=1 to allow it (and set auth.token / LH_AUTH__TOKEN)"
    )

    no_token = run_cli("serve", "storaged", env={**bind, "LH_STORAGED_ALLOW_NONLOOPBACK": "1"})
    _, err = no_token.communicate(timeout=30)
    assert no_token.returncode == 1
    assert "with no auth token; set auth.token in the config file or LH_AUTH__TOKEN" in err

    # At debug, uvicorn's shutdown lines (demoted from info) show the drain.
    secure = {"LH_STORAGED_ALLOW_NONLOOPBACK": "1", "LH_AUTH__TOKEN": "t0ken", "LH_LOG__LEVEL": "debug"}
    started = run_cli("serve", "storaged", env={**bind, **secure})
    try:
        response = wait_for_http(f"http://127.0.0.1:{port}/health", started)
        assert response.json() == {"status": "ok", "service": "storaged"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/storage/x").status_code == 401
    finally:
        started.terminate()
        out, _ = started.communicate(timeout=30)
    # uvicorn drains, then re-raises the signal it caught so the exit status still says SIGTERM.
    assert started.returncode == -signal.SIGTERM
    assert "Application shutdown complete" in out
    assert "t0ken" not in out


def test_gateway_workers_share_the_port_and_stop_together() -> None:
    port = free_port()
    env = {"LH_GATEWAY__BIND": f"127.0.0.1:{port}", "LH_GATEWAY__WORKERS": "2", "LH_LOG__LEVEL": "debug"}
    gateway = run_cli("serve", "gateway", env=env)
    assert gateway.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(gateway.stdout or ()), daemon=True)
    reader.start()
    try:
        response = wait_for_http(f"http://127.0.0.1:{port}/health", gateway)
        assert response.json() == {"status": "ok", "service": "gateway"}
        # The first worker may answer while the second still starts (a loaded machine): stop once both have.
        deadline = time.monotonic() + 60
        while sum("Application startup complete" in line for line in list(lines)) < 2:
            assert time.monotonic() < deadline, "the second worker never started"
            time.sleep(0.02)
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        reader.join(timeout=30)
        for pipe in (gateway.stdout, gateway.stderr):
            if pipe is not None:
                pipe.close()
    assert gateway.returncode == 0
    assert sum("Application shutdown complete" in line for line in lines) == 2


def test_gateway_workers_die_with_a_killed_parent() -> None:
    port = free_port()
    gateway = run_cli("serve", "gateway", env={"LH_GATEWAY__BIND": f"127.0.0.1:{port}", "LH_GATEWAY__WORKERS": "2"})
    wait_for_http(f"http://127.0.0.1:{port}/health", gateway)
    workers = [int(pid) for pid in Path(f"/proc/{gateway.pid}/task/{gateway.pid}/children").read_text().split()]
    assert len(workers) == 2
    gateway.kill()
    gateway.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "workers outlived their killed parent"
        time.sleep(0.05)
