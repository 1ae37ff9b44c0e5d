from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import duckdb
import httpx
import pytest
from pyiceberg.catalog.rest import RestCatalog

from scripts.stack_config import stack_config
from services.queryd.engine import httpfs_extension_path
from shared.stack.up import port_in_use
from tests.support.servers import wait_for_http

# A loaded 2-core CI box takes a while to start eleven Python processes.
STARTUP_WAIT_SECS = 120.0
REPO = Path(__file__).resolve().parents[2]


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


def start_up(config: Path, *args: str, log_level: str = "info") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "up", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LH_LOG__LEVEL": log_level},
    )


@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    path = tmp_path / "lakehouse.toml"
    path.write_text(stack_config("http://127.0.0.1:9", tmp_path))
    return path


def binds(config: Path) -> dict[str, int]:
    sections = tomllib.loads(config.read_text())
    return {name: int(section["bind"].rsplit(":", 1)[1]) for name, section in sections.items() if "bind" in section}


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_runs_everything_and_stops_clean(stack_file: Path, stop_signal: signal.Signals) -> None:
    ports = binds(stack_file)
    up = start_up(stack_file, log_level="debug")  # debug: uvicorn's start and drain lines
    try:
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        for port in ports.values():
            wait_for_http(f"http://127.0.0.1:{port}/health", up, timeout_secs=STARTUP_WAIT_SECS)
        report = httpx.get(gateway + "/v1/health").json()
        assert report["status"] == "ok"
        assert httpx.get(gateway + "/v1/sql/datasets").json() == {"datasets": []}
        children = descendants(up.pid)  # the eleven services, and the gateway's forked workers
        assert len(children) >= 11
    finally:
        up.send_signal(stop_signal)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    assert "lakehouse up: all 11 services ready" in out
    assert "S3 API: off (set LH_S3_API__ACCESS_KEY_ID and LH_S3_API__SECRET_ACCESS_KEY" in out
    assert out.rstrip().endswith("lakehouse up: stopped")
    # Off a terminal, child log lines stay one JSON object each, tagged with the service that wrote them.
    logged = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert logged
    assert all(line["service"] in ports for line in logged)
    assert {line["service"] for line in logged if line.get("path") == "/v1/sql/datasets"} == {"gateway", "queryd"}
    assert not [pid for pid in children if alive(pid)]
    assert all(port_free(port) for port in ports.values())
    # The graceful path, not the SIGKILL fallback: every server process drained and said so.
    assert "did not stop" not in out
    started, drained = server_processes(out, "Started"), server_processes(out, "Finished")
    assert len(started) >= 11
    assert drained == started
    assert started <= children


def server_processes(out: str, verb: str) -> set[int]:
    """The pids in uvicorn's "<verb> server process [pid]" log lines (the children log to our stdout)."""
    pids = set()
    for line in out.splitlines():
        if line.startswith("{"):
            event = json.loads(line).get("event", "")
            if event.startswith(f"{verb} server process ["):
                pids.add(int(event.rsplit("[", 1)[1].rstrip("]")))
    return pids


def test_up_with_an_s3_key_pair_serves_boto3_at_the_gateway(stack_file: Path) -> None:
    with stack_file.open("a") as config:
        config.write('\n[s3_api]\naccess_key_id = "stack-key"\nsecret_access_key = "stack-secret-value"\n')
    gateway = f"http://127.0.0.1:{binds(stack_file)['gateway']}"
    up = start_up(stack_file)
    try:
        lines = iter(up.stdout.readline, "")  # type: ignore[union-attr]
        announced = next(line for line in lines if line.startswith("S3 API:"))
        assert announced.strip() == f"S3 API: on at {gateway} (path-style, region us-east-1)"
        s3 = boto3.client(
            "s3",
            endpoint_url=gateway,
            aws_access_key_id="stack-key",
            aws_secret_access_key="stack-secret-value",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="stack")
        s3.put_object(Bucket="stack", Key="hello.txt", Body=b"from boto3")
        assert s3.get_object(Bucket="stack", Key="hello.txt")["Body"].read() == b"from boto3"
        assert httpx.get(f"{gateway}/v1/storage/objects/stack/hello.txt").content == b"from boto3"
        # An ingested dataset is Parquet at s3://datasets/<name>/: DuckDB reads it through the S3 API and agrees
        # with the stack's own SQL.
        with (REPO / "scripts" / "data" / "trips.csv").open("rb") as csv:
            ingested = httpx.post(f"{gateway}/v1/ingest/trips", files={"file": ("trips.csv", csv)}, timeout=60)
        assert ingested.status_code == 201, ingested.text
        assert ingested.json()["rows"] == 20
        sql = httpx.post(f"{gateway}/v1/sql", json={"sql": "select count(*), sum(passengers) from trips"}, timeout=60)
        assert sql.json()["rows"] == [[20, 35]]
        db = duckdb.connect()
        db.execute(f"LOAD '{httpfs_extension_path()}'")
        db.execute(
            "CREATE SECRET lake (TYPE s3, KEY_ID 'stack-key', SECRET 'stack-secret-value', REGION 'us-east-1', "
            "ENDPOINT ?, URL_STYLE 'path', USE_SSL false)",
            [gateway.removeprefix("http://")],
        )
        read = db.execute("select count(*), sum(passengers) from read_parquet('s3://datasets/trips/*/*.parquet')")
        assert read.fetchall() == [(20, 35)]
        # The same dataset is an Iceberg table, and the catalog's defaults name this gateway as the S3 endpoint.
        catalog = RestCatalog(
            "stack",
            uri=f"{gateway}/v1/iceberg",
            **{"s3.access-key-id": "stack-key", "s3.secret-access-key": "stack-secret-value"},
        )
        scanned = catalog.load_table("lakehouse.trips").scan(selected_fields=("passengers",)).to_arrow()
        assert (scanned.num_rows, sum(scanned.column("passengers").to_pylist())) == (20, 35)
    finally:
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    assert "stack-secret-value" not in out + err


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


def test_up_with_restart_no_stops_everything_when_one_service_dies(stack_file: Path) -> None:
    ports = binds(stack_file)
    up = start_up(stack_file, "--restart", "no")
    try:
        for port in ports.values():
            wait_for_http(f"http://127.0.0.1:{port}/health", up, timeout_secs=STARTUP_WAIT_SECS)
        wait_until_up_is_ready(up)
        children = descendants(up.pid)
        vectord = next(pid for pid in children if ports["vectord"] in _listening_ports(pid))
        os.kill(vectord, signal.SIGKILL)
        _, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 1
    assert err.rstrip().endswith("lakehouse: error: vectord killed by SIGKILL; stopped the others")
    assert not [pid for pid in children if alive(pid)]
    assert all(port_free(port) for port in ports.values())


def wait_until_up_is_ready(up: subprocess.Popen[str]) -> None:
    """Read `up`'s output until it says the stack is ready: a service killed before that is a failed start-up,
    which stops the stack instead of being restarted (every /health answering is not yet `up`'s readiness)."""
    assert up.stdout is not None
    for line in up.stdout:
        if "services ready" in line:
            return
    raise AssertionError(f"lakehouse up exited ({up.wait()}) before saying the stack is ready")


def service_pid(up: subprocess.Popen[str], name: str) -> int | None:
    for pid in descendants(up.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and name.encode() in argv and alive(pid):
            return pid
    return None


def test_up_restarts_a_crashed_service_and_gives_up_after_five_crashes(stack_file: Path) -> None:
    ports = binds(stack_file)
    up = start_up(stack_file)
    chatd_health = f"http://127.0.0.1:{ports['chatd']}/health"
    try:
        for port in ports.values():
            wait_for_http(f"http://127.0.0.1:{port}/health", up, timeout_secs=STARTUP_WAIT_SECS)
        wait_until_up_is_ready(up)
        killed: list[int] = []
        for crash in range(5):
            deadline = time.monotonic() + STARTUP_WAIT_SECS
            while (pid := service_pid(up, "chatd")) is None or pid in killed:
                assert up.poll() is None, "up stopped before giving up"
                assert time.monotonic() < deadline, "chatd was not restarted"
                time.sleep(0.02)
            if crash == 1:
                # The first restart is a working chatd again, on the same port.
                assert wait_for_http(chatd_health, up, timeout_secs=STARTUP_WAIT_SECS).status_code == 200
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        _, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 1
    assert "lakehouse up: chatd killed by SIGKILL; restarting in 0.5s (1 crashes within the last minute)" in err
    assert "lakehouse up: chatd killed by SIGKILL; restarting in 4s (4 crashes within the last minute)" in err
    assert err.count("lakehouse up: restarted chatd (pid ") == 4
    assert err.rstrip().endswith(
        "lakehouse: error: chatd killed by SIGKILL; it crashed 5 times within 60s, giving up; stopped the others"
    )
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


def test_up_is_not_ready_until_the_gateways_v1_health_is_ok(stack_file: Path) -> None:
    # The gateway's chat family points at a port nothing listens on: every process is healthy, the stack is not.
    text = stack_file.read_text()
    broken = re.sub(r'chatd_url = "[^"]*"', 'chatd_url = "http://127.0.0.1:9"', text)
    stack_file.write_text(broken)
    up = start_up(stack_file, "--ready-timeout", "40")
    out, err = up.communicate(timeout=60)
    assert up.returncode == 1
    assert "all 11 services ready" not in out
    assert "lakehouse: error: the gateway's /v1/health is not ok after 40s: 503" in err
    assert (
        "503 down: chatd (unreachable: UpstreamUnavailable: cannot connect to http://127.0.0.1:9: Connection refused"
        in err
    )


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain(raw: bytes) -> str:
    return ANSI.sub("", raw.decode(errors="replace"))


def read_until(fd: int, marker: str, deadline: float, count: int = 1) -> bytes:
    seen = b""
    while plain(seen).count(marker) < count:
        assert time.monotonic() < deadline, f"no {marker!r} in:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the pty closes when the process exits
                break
            seen += chunk
    return seen


def test_up_on_a_terminal_with_an_allow_list_and_a_token(stack_file: Path) -> None:
    """Prefixed, readable lines and one summary; and with auth.allowed_ips set, the stack works end to end:
    services on loopback accept the gateway's (loopback) requests, the allow-list still guards the rest."""
    stack_file.write_text(stack_file.read_text() + '\n[auth]\ntoken = "t0ken"\nallowed_ips = ["192.0.2.0/24"]\n')
    ports = binds(stack_file)
    primary, secondary = pty.openpty()
    up = subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "up", "--config", str(stack_file)],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    try:
        deadline = time.monotonic() + STARTUP_WAIT_SECS
        startup = read_until(primary, "Ctrl-C stops the stack.", deadline)
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        bearer = {"Authorization": "Bearer t0ken"}
        health = httpx.get(gateway + "/v1/health", headers=bearer)
        assert (health.status_code, health.json()["status"]) == (200, "ok")
        response = httpx.get(gateway + "/v1/sql/datasets", headers=bearer)
        assert (response.status_code, response.json()) == (200, {"datasets": []})
        after = read_until(primary, "path=/v1/sql/datasets", time.monotonic() + 30, count=2)  # queryd's, gateway's
    finally:
        up.send_signal(signal.SIGINT)
        tail = read_until(primary, "lakehouse up: stopped", time.monotonic() + 60)
        up.wait(timeout=60)
        os.close(primary)
    raw = (startup + after + tail).decode(errors="replace").replace("\r\n", "\n")
    text = ANSI.sub("", raw)
    assert up.returncode == 0
    assert "lakehouse up: all 11 services ready" in text
    assert re.search(r"SERVICE +URL +STATE +PID", text)
    for name, port in ports.items():
        assert re.search(rf"  {name} +http://127\.0\.0\.1:{port} +ready +\d+", text), name
    # Start-up chatter and the supervisor's probes stay out of the way.
    for quiet in ("Started server process", "Uvicorn running on", "Application startup complete", "path=/health"):
        assert quiet not in text
    assert "path=/v1/health " not in text
    # Every child line is prefixed with its padded, coloured name.
    assert re.search(r"\x1b\[\d+mgateway   \|\x1b\[0m ", raw)
    assert re.search(r"^gateway   \| .*request .*path=/v1/sql/datasets", text, re.MULTILINE)
    assert re.search(r"^queryd    \| .*request .*path=/v1/sql/datasets", text, re.MULTILINE)
    assert "t0ken" not in text


def test_right_after_up_is_ready_vectors_are_served(stack_file: Path) -> None:
    # No checkpoint: the second `up` finds 20,000 vectors to replay from vectord's log.
    stack_file.write_text(stack_file.read_text().replace("[vectord]\n", f"[vectord]\nsnapshot_bytes = {1 << 40}\n"))
    gateway = f"http://127.0.0.1:{binds(stack_file)['gateway']}"
    dims, total, batch = 16, 20_000, 1_000
    vector = [0.5] * dims

    with start_up(stack_file) as up, ready_then_drained(up), httpx.Client(base_url=gateway, timeout=60) as client:
        assert client.put("/v1/vectors/k", json={"dimensions": dims}).status_code == 201
        for start in range(0, total, batch):
            items = [{"id": f"v{i}", "vector": [float(i % 97 + 1), *vector[1:]]} for i in range(start, start + batch)]
            assert client.post("/v1/vectors/k/upsert", json={"items": items}).status_code == 200
    assert up.returncode == 0

    # At once, as a client that started with the stack would.
    with start_up(stack_file) as up, ready_then_drained(up), httpx.Client(base_url=gateway, timeout=60) as client:
        listing = client.get("/v1/vectors")
        query = client.post("/v1/vectors/k/query", json={"vector": vector, "k": 3})
        health = client.get("/v1/health").json()
    assert listing.status_code == 200, listing.text
    assert listing.json()["indexes"] == [{"name": "k", "dimensions": dims, "metric": "cosine", "count": total}]
    assert query.status_code == 200, query.text
    assert health["services"]["vectord"]["status"] == "ok"


@contextmanager
def ready_then_drained(up: subprocess.Popen[str]) -> Iterator[None]:
    """Once `up` says the stack is ready: its output drained (no child blocks on a full pipe), SIGTERM on exit."""
    assert up.stdout is not None
    drain = threading.Thread(target=up.stdout.read)
    try:
        for line in up.stdout:
            if "lakehouse up: all 11 services ready" in line:
                break
        else:
            raise AssertionError(f"up exited ({up.wait()}) before it was ready")
        drain.start()
        yield
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
        if drain.is_alive():
            drain.join()
