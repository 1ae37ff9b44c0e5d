from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from scripts.stack_config import stack_config
from shared.stack import port_in_use
from tests.support.servers import wait_for_http


def descendants(pid: int) -> set[int]:
    children: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            children |= {child} | descendants(child)
    return children


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is already gone in every sense but its exit status.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def port_free(port: int) -> bool:
    return not port_in_use(f"127.0.0.1:{port}")


def start_up(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "up", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    path = tmp_path / "lakehouse.toml"
    path.write_text(stack_config("http://127.0.0.1:9", tmp_path))
    return path


def binds(config: Path) -> dict[str, int]:
    sections = tomllib.loads(config.read_text())
    return {name: int(section["bind"].rsplit(":", 1)[1]) for name, section in sections.items()}


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_runs_everything_and_stops_clean(stack_file: Path, stop_signal: signal.Signals) -> None:
    ports = binds(stack_file)
    up = start_up(stack_file)
    try:
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        for port in ports.values():
            wait_for_http(f"http://127.0.0.1:{port}/health", up)
        report = httpx.get(gateway + "/v1/health").json()
        assert report["status"] == "ok"
        assert httpx.get(gateway + "/v1/sql/x").json()["error"]["message"] == "queryd is not implemented yet"
        children = descendants(up.pid)  # the eleven services, and the gateway's forked workers
        assert len(children) >= 11
    finally:
        up.send_signal(stop_signal)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    assert "lakehouse up: all 11 services ready" in out
    assert out.rstrip().endswith("lakehouse up: stopped")
    assert not [pid for pid in children if alive(pid)]
    assert all(port_free(port) for port in ports.values())


def test_up_names_a_taken_port_before_starting_anything(stack_file: Path) -> None:
    ports = binds(stack_file)
    with socket.create_server(("127.0.0.1", ports["vectord"])):
        up = start_up(stack_file)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 1
    assert err == (
        f"lakehouse: error: address already in use: vectord (127.0.0.1:{ports['vectord']}); "
        "stop what holds it or change the bind\n"
    )
    assert out == ""


def test_up_stops_everything_when_one_service_dies(stack_file: Path) -> None:
    ports = binds(stack_file)
    up = start_up(stack_file)
    try:
        for port in ports.values():
            wait_for_http(f"http://127.0.0.1:{port}/health", up)
        children = descendants(up.pid)
        vectord = next(pid for pid in children if ports["vectord"] in _listening_ports(pid))
        os.kill(vectord, signal.SIGKILL)
        _, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 1
    assert err.rstrip().endswith("lakehouse: error: vectord exited unexpectedly with status -9; stopped the others")
    assert not [pid for pid in children if alive(pid)]
    assert all(port_free(port) for port in ports.values())


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports `pid` listens on, from its /proc socket inodes."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes and fields[3] == "0A":  # 0A: LISTEN
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_up_refuses_a_gated_bind_before_starting_anything(stack_file: Path) -> None:
    stack_file.write_text(stack_file.read_text().replace('[chatd]\nbind = "127.0.0.1:', '[chatd]\nbind = "0.0.0.0:'))
    up = start_up(stack_file)
    out, err = up.communicate(timeout=60)
    assert up.returncode == 1
    assert "lakehouse: error: chatd: refusing non-loopback bind 0.0.0.0:" in err
    assert "starting" not in out
