"""`just soak`: the gateway in front of a fast upstream under steady load, some clients aborting mid-body.

Prints the RSS of every process (upstream, gateway master and workers) at start and end, the sockets left behind
on both sides of the gateway once the load stops, and how many answers were 5xx. Not part of `just verify`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts.benchlib import process
from scripts.net import free_port

PATH = b"/v1/storage/hello"
BODY = b"x" * 1024
ABORTED_BODY_BYTES = 256 << 10  # announced, but only part of it is sent before the client goes away
TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN"}


@dataclass
class Tally:
    ok: int = 0
    server_errors: int = 0
    other: dict[int, int] = field(default_factory=dict)
    aborted: int = 0
    client_errors: int = 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def tcp_states(port: int, *, local: bool) -> dict[str, int]:
    """Socket states on loopback whose local (or remote) port is `port`."""
    counts: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address = fields[1] if local else fields[2]
            if int(address.rsplit(":", 1)[1], 16) == port:
                state = TCP_STATES.get(fields[3], fields[3])
                counts[state] = counts.get(state, 0) + 1
    return counts


def memory(pids: dict[str, int]) -> dict[str, int]:
    return {name: rss_kib(pid) for name, pid in pids.items()}


async def read_status(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def client(port: int, deadline: float, abort_ratio: float, tally: Tally) -> None:
    request = (
        b"POST %s HTTP/1.1\r\nHost: soak\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n%s"
        % (PATH, len(BODY), BODY)
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.monotonic() < deadline:
        if random.random() < abort_ratio:
            # A client that goes away mid-body, on its own connection: the gateway must free the upstream call.
            _, abort_writer = await asyncio.open_connection("127.0.0.1", port)
            abort_writer.write(
                b"POST %s HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n" % (PATH, ABORTED_BODY_BYTES)
                + b"y" * (ABORTED_BODY_BYTES // 4)
            )
            await abort_writer.drain()
            await asyncio.sleep(0.005)
            abort_writer.transport.abort()
            tally.aborted += 1
            continue
        try:
            writer.write(request)
            status = await read_status(reader)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            tally.client_errors += 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            continue
        if status < 300:
            tally.ok += 1
        elif status >= 500:
            tally.server_errors += 1
        else:
            tally.other[status] = tally.other.get(status, 0) + 1
    writer.close()


async def load(port: int, seconds: float, concurrency: int, abort_ratio: float, pids: dict[str, int]) -> Tally:
    tally = Tally()
    began = time.monotonic()
    deadline = began + seconds
    tasks = [asyncio.create_task(client(port, deadline, abort_ratio, tally)) for _ in range(concurrency)]
    while not all(task.done() for task in tasks):
        await asyncio.sleep(min(60.0, max(0.1, deadline - time.monotonic())))
        if time.monotonic() >= deadline and not all(task.done() for task in tasks):
            continue  # the last requests are finishing; the final line follows
        elapsed = time.monotonic() - began
        rss = ", ".join(f"{name} {kib // 1024} MiB" for name, kib in memory(pids).items())
        print(
            f"  {elapsed:6.0f}s  {tally.ok + tally.server_errors:>9} answered ({(tally.ok) / elapsed:,.0f}/s ok)  "
            f"5xx {tally.server_errors}  aborted {tally.aborted}  |  {rss}",
            flush=True,
        )
    for task in tasks:
        task.result()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent clients (default 64)")
    parser.add_argument("--abort-percent", type=float, default=5.0, help="requests aborted mid-body (default 5)")
    parser.add_argument("--workers", type=int, default=0, help="gateway workers (default 0 = one per core)")
    args = parser.parse_args()
    upstream_port, gateway_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    env = {
        "LH_CONFIG": "/dev/null/none.toml",
        "LH_LOG__LEVEL": "warning",
        "LH_GATEWAY__BIND": f"127.0.0.1:{gateway_port}",
        "LH_GATEWAY__STORAGED_URL": upstream,
        "LH_GATEWAY__WORKERS": str(args.workers),
    }
    print(
        f"soak: {args.minutes:g} min, c{args.concurrency}, {args.abort_percent:g}% aborted mid-body, "
        f"gateway workers {args.workers or 'per core'}",
        flush=True,
    )
    with (
        process("upstream", ["scripts/bench_upstream.py", str(upstream_port)], upstream + "/health") as up,
        process("gateway", ["-m", "shared.stack.cli", "serve", "gateway"], gateway + "/health", env) as gw,
    ):
        time.sleep(1.0)
        pids = {"upstream": up.pid, "gateway master": gw.pid}
        pids |= {f"gateway worker {i}": pid for i, pid in enumerate(children(gw.pid))}
        # Warm up, so the start figures include the pools and caches a running gateway has.
        asyncio.run(load(gateway_port, 5, args.concurrency, 0.0, pids))
        time.sleep(2.0)
        start = memory(pids)
        tally = asyncio.run(load(gateway_port, args.minutes * 60, args.concurrency, args.abort_percent / 100, pids))
        time.sleep(5.0)  # let closes and cancellations settle before counting what is left
        end = memory(pids)
        client_side = tcp_states(gateway_port, local=True)
        upstream_side = tcp_states(upstream_port, local=False)
        alive = gw.poll() is None and up.poll() is None
    print()
    print("| process | RSS start MiB | RSS end MiB | change |")
    print("|---|---|---|---|")
    for name in pids:
        change = (end[name] - start[name]) / start[name] if start[name] else 0.0
        print(f"| {name} | {start[name] / 1024:.1f} | {end[name] / 1024:.1f} | {change:+.1%} |")
    leaked_client = sum(n for state, n in client_side.items() if state not in ("LISTEN", "TIME_WAIT"))
    print()
    print(
        f"answered: {tally.ok + tally.server_errors + sum(tally.other.values())}, 2xx {tally.ok}, "
        f"5xx {tally.server_errors}, other {tally.other or 0}, aborted mid-body {tally.aborted}, "
        f"client-side connection errors {tally.client_errors}"
    )
    print(f"sockets on the gateway's port after the load: {client_side} -> leaked {leaked_client}")
    print(f"gateway -> upstream sockets after the load (idle pool, not leaks while ESTABLISHED): {upstream_side}")
    print(f"processes still running at the end: {'yes' if alive else 'NO'}")


if __name__ == "__main__":
    main()
