"""`just soak-health`: the console's health poll against a whole stack, for minutes, counting every false "down".

The console asks the gateway's `/v1/health` every 5 s, and uvicorn closes an idle keep-alive connection after 5 s:
the race in which a prober reuses a connection its upstream is just closing. This polls exactly like that (every
`--every` seconds, a little jitter around it so the race is hit from both sides) for `--minutes`, against a stack
that `lakehouse up` started; every service is alive throughout, so any service not reported ok is a false down.
Prints one line per false down and a summary; exits 1 if there was any. Not part of `just verify`.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from scripts.datastack import data_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to poll")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between polls (the console's 5)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="soak-health-"))
    polls, client_retries, false_down = 0, 0, Counter[str]()
    try:
        with data_stack(work) as stack, httpx.Client(base_url=stack.gateway, timeout=30) as console:
            deadline = time.monotonic() + args.minutes * 60
            while time.monotonic() < deadline:
                try:
                    report = console.get("/v1/health").json()
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    # This client's own keep-alive connection, closed by the gateway as it was reused: a browser
                    # retries such a request on a fresh connection, so does the console's poll here.
                    client_retries += 1
                    report = console.get("/v1/health").json()
                polls += 1
                for name, upstream in report["services"].items():
                    if upstream.get("status") != "ok":
                        false_down[name] += 1
                        print(f"  poll {polls}: {name} reported {upstream}", flush=True)
                time.sleep(args.every + random.uniform(-0.05, 0.05))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nload average at the end: {load} ({os.cpu_count()} cores)")
    print(f"{polls} polls of /v1/health over {args.minutes:g} min, every {args.every:g} s (+-50 ms)")
    print(f"the poller's own reused connection closed by the gateway, retried: {client_retries}")
    print(f"false downs: {sum(false_down.values())}" + (f" ({dict(false_down)})" if false_down else ""))
    raise SystemExit(1 if false_down else 0)


if __name__ == "__main__":
    main()
