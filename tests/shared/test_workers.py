"""The gateway's master: a worker that dies is logged (which, pid, signal) and respawned; the port keeps serving."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.server.restart_policy import CrashWindow, describe_exit
from tests.support.servers import free_port, wait_for_http

STARTUP_WAIT_SECS = 120.0


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def wait_until(predicate: object, what: str, timeout: float = STARTUP_WAIT_SECS) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_master_respawns_a_worker_that_dies_and_logs_which(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    env = {**os.environ, "LH_GATEWAY__BIND": f"127.0.0.1:{port}", "LH_GATEWAY__WORKERS": "2"}
    with log.open("w") as out:
        master = subprocess.Popen(
            [sys.executable, "-m", "shared.stack.cli", "serve", "gateway"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", master, timeout_secs=STARTUP_WAIT_SECS)
        wait_until(lambda: len(children_of(master.pid)) == 2, "two workers")
        before = children_of(master.pid)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in children_of(master.pid) and len(children_of(master.pid)) == 2, "a respawn")
        (replacement,) = children_of(master.pid) - before
        for _ in range(20):  # both workers (the new one included) keep answering on the one port
            assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert master.poll() is None
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=60)
    assert master.returncode == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    died = [line for line in lines if line.get("pid") == victim and line["level"] == "error"]
    assert len(died) == 1
    assert died[0]["signal"] == "SIGKILL"
    assert died[0]["event"] == f"gateway worker {died[0]['worker']} (pid {victim}) killed by SIGKILL"
    respawned = [line for line in lines if line.get("pid") != victim and "respawned" in line["event"]]
    assert [line["pid"] for line in respawned] == [replacement]
    assert respawned[0]["worker"] == died[0]["worker"]


@pytest.mark.parametrize(
    ("code", "words"),
    [(-9, "killed by SIGKILL"), (-15, "killed by SIGTERM"), (1, "exited with status 1"), (0, "exited with status 0")],
)
def test_describe_exit(code: int, words: str) -> None:
    assert describe_exit(code) == words


def test_crash_window_gives_up_after_five_within_sixty_seconds_and_backs_off() -> None:
    now = [0.0]
    window = CrashWindow(clock=lambda: now[0])
    delays = []
    for _ in range(4):
        window.record()
        delays.append(window.delay())
        now[0] += 10
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert not window.exhausted
    window.record()
    assert window.exhausted
    now[0] += 61  # old crashes age out of the window
    assert window.record() == 1
    assert not window.exhausted


def test_the_master_gives_up_after_five_worker_crashes_within_a_minute(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    env = {**os.environ, "LH_GATEWAY__BIND": f"127.0.0.1:{port}", "LH_GATEWAY__WORKERS": "2"}
    with log.open("w") as out:
        master = subprocess.Popen(
            [sys.executable, "-m", "shared.stack.cli", "serve", "gateway"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", master, timeout_secs=STARTUP_WAIT_SECS)
        killed: set[int] = set()
        while master.poll() is None and len(killed) < 5:
            for pid in children_of(master.pid) - killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                break
            time.sleep(0.05)
        master.wait(timeout=60)
    finally:
        if master.poll() is None:
            master.kill()
    assert master.returncode == 1
    events = [json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert "gateway: 5 worker crashes within 60s; giving up" in events
    assert not children_of(master.pid)
