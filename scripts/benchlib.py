"""Benchmark plumbing: start servers as processes, drive them with wrk (or a Python fallback), print a table."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.net import wait_for_http

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Result:
    label: str
    connections: int
    requests_per_sec: float
    p50_ms: float
    p99_ms: float
    errors: int


@contextmanager
def process(
    name: str, args: Sequence[str], health_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        try:
            wait_for_http(health_url, proc)
        except AssertionError as exc:
            raise SystemExit(f"{name} did not start ({exc}); see {log.name}") from None
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str, connections: int, seconds: int, body: bytes | None, headers: Mapping[str, str] | None = None
) -> tuple[float, float, float, int]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    args += [flag for name, value in (headers or {}).items() for flag in ("-H", f"{name}: {value}")]
    script = None
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        script.write(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[{body.decode()}]]\n'
        )
        script.close()
        args += ["-s", script.name]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if script is not None:
        os.unlink(script.name)
    rps = float(_required(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _required(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = _required(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = _count(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += _count(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, _ms(p50.group(1), p50.group(2)), _ms(p99.group(1), p99.group(2)), errors


def _required(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"unexpected wrk output (no {pattern!r}):\n{text}")
    return match


def _count(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return sum(int(group) for group in match.groups()) if match else 0


async def _python_load(
    url: str, connections: int, seconds: int, body: bytes | None, headers: Mapping[str, str] | None = None
) -> tuple[float, float, float, int]:
    parsed = httpx.URL(url)
    method = b"POST" if body is not None else b"GET"
    # Host names the port too: a SigV4-signed (presigned) URL signs host:port.
    head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, parsed.raw_path, parsed.netloc)
    head += b"".join(f"{name}: {value}\r\n".encode() for name, value in (headers or {}).items())
    if body is not None:
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    request = head + b"\r\n" + (body or b"")
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 2"):
                errors += 1
        writer.close()

    began = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.monotonic() - began
    latencies.sort()
    return (
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
        errors,
    )


def measure(
    label: str,
    url: str,
    connections: int,
    seconds: int,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Result:
    if shutil.which("wrk"):
        rps, p50, p99, errors = run_wrk(url, connections, seconds, body, headers)
    else:
        rps, p50, p99, errors = asyncio.run(_python_load(url, connections, seconds, body, headers))
    result = Result(label, connections, rps, p50, p99, errors)
    print(
        f"  measured {label:<16} c={connections:<3} {rps:>9.0f} req/s  p50 {p50:7.3f} ms  p99 {p99:7.3f} ms"
        f"  errors {errors}",
        flush=True,
    )
    return result


def announce_load_generator() -> None:
    if shutil.which("wrk"):
        print("load generator: wrk (1 thread)")
    else:
        print(
            "load generator: built-in Python client (wrk not found: `apt-get install wrk` for numbers where the "
            "load generator is not the bottleneck)"
        )


def result_row(result: Result, *extra: str) -> str:
    """One Markdown row of a measurement: label, req/s, p50 and p99 ms, errors, then `extra` cells."""
    cells = [result.label, f"{result.requests_per_sec:.0f}", f"{result.p50_ms:.2f}", f"{result.p99_ms:.2f}"]
    return "| " + " | ".join([*cells, str(result.errors), *extra]) + " |"


def print_table(direct: Sequence[Result], via: Sequence[Result], via_label: str) -> None:
    print()
    print(
        f"| conns | direct req/s | {via_label} req/s | ratio | direct p50 ms | {via_label} p50 ms | added p50 ms |"
        f" direct p99 ms | {via_label} p99 ms | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d, v in zip(direct, via, strict=True):
        print(
            f"| {d.connections} | {d.requests_per_sec:.0f} | {v.requests_per_sec:.0f} | "
            f"{v.requests_per_sec / d.requests_per_sec:.1%} | {d.p50_ms:.3f} | {v.p50_ms:.3f} | "
            f"{v.p50_ms - d.p50_ms:+.3f} | {d.p99_ms:.3f} | {v.p99_ms:.3f} | {d.errors + v.errors} |"
        )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the core count, as the benchmark tables quote them."""
    return f"{' / '.join(f'{value:.2f}' for value in os.getloadavg())} ({os.cpu_count()} cores)"
