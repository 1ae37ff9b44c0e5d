"""`just bench-logs`: observerd appends/s with fsync on (c1, c16), and how long a 1 GiB log takes to replay.

The log lives in a temporary directory on the disk that holds $TMPDIR (fsync there is real; on a tmpfs it is not),
and the 1 GiB file is generated here and deleted afterwards, never committed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from scripts.benchlib import ROOT, announce_load_generator, measure, process
from scripts.net import free_port, wait_for_http
from shared.jsonlog.timestamps import TimestampCodec

OP = orjson.dumps({"service": "queryd", "op": "sql.query", "status": "ok", "duration_ms": 12.5, "attrs": {"rows": 100}})
REPLAY = """
import resource, sys, time
from pathlib import Path
from shared.jsonlog.replay import replay
from services.observerd.app import create_app  # noqa: F401 (the service's imports count too)
from shared.jsonlog.index import LogSpec
started = time.perf_counter()
done = replay(Path(sys.argv[1]), LogSpec(tags=("service", "op", "status"), number="duration_ms"))
seconds = time.perf_counter() - started
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f'{{"seconds": {seconds}, "records": {done.index.count}, "rss_mib": {rss_mib}}}')
"""


def generate(path: Path, size: int) -> int:
    """A log of about `size` bytes shaped like observerd's: small ops, the most records per GiB."""
    codec = TimestampCodec()
    start = (int(time.time()) - 86_400) * 1_000_000
    seq = 0
    written = 0
    with path.open("wb") as file:
        while written < size:
            lines = []
            for _ in range(10_000):
                seq += 1
                record = {
                    "seq": seq,
                    "ts": codec.format(start + seq * 10),
                    "service": f"svc{seq % 10}",
                    "op": f"op{seq % 37}",
                    "status": "error" if seq % 50 == 0 else "ok",
                    "duration_ms": (seq % 1000) / 10,
                    "attrs": {"rows": seq % 977, "dataset": "sales_2026", "request_id": f"{seq:032x}"},
                }
                lines.append(orjson.dumps(record))
            chunk = b"\n".join(lines) + b"\n"
            file.write(chunk)
            written += len(chunk)
    return seq


def start_seconds(url: str, env: dict[str, str]) -> float:
    """Seconds from launching observerd to its first /health answer (uvicorn serves once the replay is done)."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.stack.cli", "serve", "observerd"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(url + "/health", proc, timeout_secs=900)
        return time.perf_counter() - began
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="duration of each append measurement")
    parser.add_argument("--replay-mib", type=int, default=1024, help="size of the generated log to replay")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    try:
        announce_load_generator()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "LH_CONFIG": "/dev/null/none.toml",
            "LH_OBSERVERD__BIND": f"127.0.0.1:{port}",
            "LH_OBSERVERD__PERSIST_PATH": str(work / "ops.jsonl"),
            "LH_LOG__LEVEL": "warning",
        }
        with process("observerd", ["-m", "shared.stack.cli", "serve", "observerd"], url + "/health", env):
            measure("warm-up", url + "/v1/observer/ops", 4, 1, OP)
            appends = [measure("append", url + "/v1/observer/ops", c, args.seconds, OP) for c in (1, 16)]
        lines = (work / "ops.jsonl").read_bytes().count(b"\n")

        big = work / "big.jsonl"
        began = time.perf_counter()
        records = generate(big, args.replay_mib << 20)
        size_mib = big.stat().st_size / (1 << 20)
        print(f"  generated {size_mib:.0f} MiB, {records} records in {time.perf_counter() - began:.1f} s", flush=True)
        out = subprocess.run(
            [sys.executable, "-c", REPLAY, str(big)], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        replayed = json.loads(out)
        env["LH_OBSERVERD__PERSIST_PATH"] = str(big)
        # First start: the whole log is parsed and an index snapshot saved; second: the snapshot is checked and used.
        starts = [start_seconds(url, {**os.environ, **env}) for _ in range(2)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("| conns | appends/s (fsync on) | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|")
    for result in appends:
        print(
            f"| {result.connections} | {result.requests_per_sec:.0f} | {result.p50_ms:.3f} | {result.p99_ms:.3f} |"
            f" {result.errors} |"
        )
    print(f"\n{lines} ops on disk after the append runs.\n")
    print(
        "| log | records | full replay s (in-process) | MiB/s | peak RSS MiB | observerd to /health, no snapshot s |"
        " observerd to /health, with snapshot s |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {size_mib:.0f} MiB | {replayed['records']} | {replayed['seconds']:.1f} |"
        f" {size_mib / replayed['seconds']:.0f} | {replayed['rss_mib']:.0f} | {starts[0]:.1f} | {starts[1]:.1f} |"
    )


if __name__ == "__main__":
    main()
