"""`just bench`: a hello upstream measured directly and through the gateway, at concurrency 1 and 64.

The gateway runs once per `--workers` value (default: 1, then 0 = one per CPU core), against the same direct baseline.
"""

from __future__ import annotations

import argparse
import os

from scripts.benchlib import announce_load_generator, measure, print_table, process
from scripts.net import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="duration of each measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 0], help="gateway worker counts (0 = per core)")
    args = parser.parse_args()
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    path = "/v1/storage/hello"
    announce_load_generator()
    with process("upstream", ["scripts/bench_upstream.py", str(upstream_port)], upstream + "/health"):
        measure("warm-up", upstream + path, 8, 1)
        direct = [measure("direct", upstream + path, c, args.seconds) for c in (1, 64)]
        tables = []
        for workers in args.workers:
            gateway_port = free_port()
            gateway = f"http://127.0.0.1:{gateway_port}"
            env = {
                "LH_CONFIG": "/dev/null/none.toml",
                "LH_GATEWAY__BIND": f"127.0.0.1:{gateway_port}",
                "LH_GATEWAY__STORAGED_URL": upstream,
                "LH_GATEWAY__WORKERS": str(workers),
            }
            with process("gateway", ["-m", "shared.stack.cli", "serve", "gateway"], gateway + "/health", env):
                measure("warm-up", gateway + path, 8, 1)
                label = f"gateway x{workers or os.cpu_count()}"
                tables.append((label, [measure(label, gateway + path, c, args.seconds) for c in (1, 64)]))
    for label, via in tables:
        print_table(direct, via, label)


if __name__ == "__main__":
    main()
