"""`just bench-storage`: storaged's large-object MB/s (direct, through the gateway, and `cp` on the same disk as the
physical anchor) and small-object GET req/s at c16, direct vs through the gateway. Local backend; one table.

Each large transfer runs `--repeat` times and the median counts: a single 0.1 s copy is mostly noise. A GET's client
discards the bytes (curl -o /dev/null), so the row measures what storaged and the gateway deliver; the "client writes
a file" row shows what curl's own 16 KiB writes to disk add on top.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from scripts.benchlib import announce_load_generator, measure, process, result_row
from scripts.net import free_port

MIB = 1 << 20


def median_of(repeat: int, run: Callable[..., float], *args: object) -> float:
    return statistics.median(run(*args) for _ in range(repeat))


def random_file(path: Path, mib: int) -> Path:
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))
    return path


def cp_seconds(source: Path, target: Path) -> float:
    began = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    seconds = time.perf_counter() - began
    target.unlink()
    return seconds


def curl_seconds(args: list[str], output: Path | None = None) -> float:
    """curl's own transfer time (its `time_total`: connect to last byte), so its start-up is not counted."""
    where = str(output) if output is not None else "/dev/null"
    done = subprocess.run(
        ["curl", "-sS", "-f", "-o", where, "-w", "%{time_total}", *args], check=True, capture_output=True, text=True
    )
    if output is not None:
        output.unlink()
    return float(done.stdout)


@contextmanager
def storaged_behind_gateway(work: Path, size: int, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """storaged (local backend under `work`, objects up to `size` and a MiB) and a gateway before it, as processes:
    their two base URLs. `env` adds settings (the S3 API's key pair)."""
    storaged_port, gateway_port = free_port(), free_port()
    storaged = f"http://127.0.0.1:{storaged_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    settings = {
        "LH_CONFIG": "/dev/null/none.toml",
        "LH_LOG__LEVEL": "warning",
        "LH_STORAGED__BIND": f"127.0.0.1:{storaged_port}",
        "LH_STORAGED__ROOT": str(work / "objects"),
        "LH_STORAGED__MAX_PUT_BYTES": str(size + MIB),
        "LH_GATEWAY__BIND": f"127.0.0.1:{gateway_port}",
        "LH_GATEWAY__STORAGED_URL": storaged,
        **(env or {}),
    }
    with (
        process("storaged", ["-m", "shared.stack.cli", "serve", "storaged"], storaged + "/health", settings),
        process("gateway", ["-m", "shared.stack.cli", "serve", "gateway"], gateway + "/health", settings),
    ):
        yield storaged, gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="size of the large object")
    parser.add_argument("--seconds", type=int, default=8, help="duration of each small-GET measurement")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each large transfer (the median counts)")
    args = parser.parse_args()
    size = args.mib * MIB
    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        source = random_file(work / "source.bin", args.mib)
        rows: list[tuple[str, float]] = []
        copy = work / "copy.bin"
        rows.append(("cp (same disk, page cache, no fsync)", median_of(args.repeat, cp_seconds, source, copy)))

        announce_load_generator()
        with storaged_behind_gateway(work, size) as (storaged, gateway):
            for label, base in (("direct", storaged), ("gateway", gateway)):
                url = f"{base}/v1/storage/objects/bench/{label}.bin"
                put = ["-T", str(source), "-H", "content-type: application/x-bench", url]
                rows.append((f"PUT {label} (storaged fsyncs)", median_of(args.repeat, curl_seconds, put)))
                rows.append((f"GET {label}", median_of(args.repeat, curl_seconds, [url])))
            got = work / "got.bin"
            rows.append(("GET gateway, client writes a file", median_of(args.repeat, curl_seconds, [url], got)))
            small = "/v1/storage/objects/bench/small-4k"
            httpx.put(storaged + small, content=os.urandom(4096)).raise_for_status()
            measure("warm-up", storaged + small, 8, 1)
            small_direct = measure("4 KiB GET direct", storaged + small, 16, args.seconds)
            measure("warm-up", gateway + small, 8, 1)
            small_gateway = measure("4 KiB GET gateway", gateway + small, 16, args.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cp_rate = size / MIB / rows[0][1]
    print()
    print(f"| {args.mib} MiB object | seconds | MB/s | vs cp |")
    print("|---|---|---|---|")
    for label, secs in rows:
        rate = size / MIB / secs
        print(f"| {label} | {secs:.2f} | {rate:.0f} | {rate / cp_rate:.0%} |")
    print()
    print("| 4 KiB GET, c16 | req/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|")
    for result in (small_direct, small_gateway):
        print(result_row(result))


if __name__ == "__main__":
    main()
